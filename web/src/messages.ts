// Every string the console shows, in one table. Texts that come from the server (cause titles
// and remedies, error messages, remediation results) arrive as {ja, en} and are not repeated here.

export type Lang = 'ja' | 'en';
export interface Bilingual {
  ja: string;
  en: string;
}

/** DESIGN §3, in its order; the Japanese labels are the contract (test/console-messages.test.ts). */
export const JOB_STATUS_LABELS = {
  waiting: { ja: '待機中', en: 'Waiting' },
  scheduled: { ja: '予約待機中', en: 'Scheduled' },
  license_assigning: { ja: 'ライセンス割当中', en: 'Assigning licence' },
  push_sending: { ja: 'PUSH送信中', en: 'Sending push' },
  retry_waiting: { ja: 'リトライ待機中', en: 'Waiting to retry' },
  awaiting_response: { ja: '端末応答待ち', en: 'Awaiting device response' },
  executing: { ja: '実行中', en: 'In progress' },
  success: { ja: '成功', en: 'Succeeded' },
  push_timeout: { ja: 'PUSHタイムアウト', en: 'Push timed out' },
  request_timeout: { ja: '要求タイムアウト', en: 'Request timed out' },
  session_timeout: { ja: 'セッションタイムアウト', en: 'Session timed out' },
  cancelled: { ja: 'キャンセル', en: 'Cancelled' },
  device_error: { ja: '端末エラー', en: 'Device error' },
  server_error: { ja: 'サーバーエラー', en: 'Server error' },
  license_failed: { ja: 'ライセンス割り当て失敗', en: 'Licence assignment failed' },
} as const satisfies Record<string, Bilingual>;

export type JobStatus = keyof typeof JOB_STATUS_LABELS;
export const JOB_STATUSES = Object.keys(JOB_STATUS_LABELS) as JobStatus[];
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set<JobStatus>([
  'success',
  'push_timeout',
  'request_timeout',
  'session_timeout',
  'cancelled',
  'device_error',
  'server_error',
  'license_failed',
]);

/** `リトライ待機中(3)` / `Waiting to retry (3)`, as in the catalogue's jobStatusLabel. */
export function statusLabel(status: string, lang: Lang, retryCount?: number | null): string {
  const label = (JOB_STATUS_LABELS as Record<string, Bilingual>)[status];
  if (!label) return status;
  if (status !== 'retry_waiting' || retryCount === undefined || retryCount === null) return label[lang];
  return lang === 'ja' ? `${label.ja}(${retryCount})` : `${label.en} (${retryCount})`;
}

export const DEVICE_STATUS_LABELS = {
  pending: { ja: '登録待ち', en: 'Pending' },
  enrolled: { ja: '登録済み', en: 'Enrolled' },
  unenrolled: { ja: '登録解除', en: 'Unenrolled' },
  deactivated: { ja: '無効化', en: 'Deactivated' },
} as const satisfies Record<string, Bilingual>;

export const TOKEN_STATE_LABELS = {
  active: { ja: '有効', en: 'Active' },
  expiring: { ja: 'まもなく期限切れ', en: 'Expiring' },
  expired: { ja: '期限切れ', en: 'Expired' },
  revoked: { ja: '失効', en: 'Revoked' },
  invalid: { ja: '無効', en: 'Invalid' },
  other_mdm: { ja: '他のMDMが管理中', en: 'Claimed by another MDM' },
  legacy_unmigrated: { ja: '未移行（旧形式）', en: 'Not migrated (legacy)' },
} as const satisfies Record<string, Bilingual>;

export const CONFIDENCE_LABELS = {
  confirmed: { ja: '確定', en: 'Confirmed' },
  likely: { ja: '可能性が高い', en: 'Likely' },
  possible: { ja: '可能性あり', en: 'Possible' },
} as const satisfies Record<string, Bilingual>;

/** Button texts of the remedy actions a cause may carry (DESIGN §5); unknown ones show their id. */
export const ACTION_LABELS: Record<string, Bilingual> = {
  retry: { ja: '再試行', en: 'Retry' },
  cancel: { ja: 'キャンセル', en: 'Cancel' },
  renew_token: { ja: 'トークンを更新', en: 'Renew token' },
  share_token: { ja: 'トークンを共有', en: 'Share token' },
  assign_license: { ja: 'ライセンスを割り当て', en: 'Assign licence' },
  reclaim_and_reassign: { ja: 'ライセンスを回収して再割り当て', en: 'Reclaim and reassign' },
  refresh_device_info: { ja: '端末情報を更新', en: 'Refresh device info' },
  logout_users: { ja: 'ユーザーをログアウト', en: 'Log out users' },
  sync_token: { ja: 'トークンを同期', en: 'Sync token' },
  migrate_token: { ja: 'トークンを移行', en: 'Migrate token' },
  register_token: { ja: 'トークンを登録', en: 'Register a token' },
  takeover_token: { ja: 'トークンを引き継ぐ', en: 'Take over token' },
  set_auto_assign: { ja: '自動割当トークンを設定', en: 'Set auto-assign token' },
  take_over_unmanaged_app: { ja: 'インストール済み App を管理対象にする', en: 'Take over the installed app' },
};

export const M = {
  appName: { ja: 'haishin 配信 管理コンソール', en: 'haishin admin console' },
  signInTitle: { ja: 'サインイン', en: 'Sign in' },
  signInHelp: {
    ja: '管理者トークン (hs_…) を貼り付けてください。サーバー起動時に表示されます。トークンはこのタブを閉じるまで保持されます。',
    en: 'Paste the admin token (hs_…). The server prints it when it starts. It is kept until this tab is closed.',
  },
  adminToken: { ja: '管理者トークン', en: 'Admin token' },
  signIn: { ja: 'サインイン', en: 'Sign in' },
  signOut: { ja: 'サインアウト', en: 'Sign out' },
  checking: { ja: '確認中…', en: 'Checking…' },
  language: { ja: '言語', en: 'Language' },

  navDistributions: { ja: '配信履歴', en: 'Distributions' },
  navDevices: { ja: '端末', en: 'Devices' },
  navGroups: { ja: 'グループ', en: 'Groups' },
  navTokens: { ja: 'VPP トークン', en: 'VPP tokens' },
  navExplain: { ja: 'エラーを解説', en: 'Explain an error' },

  loading: { ja: '読み込み中…', en: 'Loading…' },
  none: { ja: 'ありません', en: 'None' },
  more: { ja: 'さらに読み込む', en: 'Load more' },
  next: { ja: '次へ', en: 'Next' },
  prev: { ja: '前へ', en: 'Previous' },
  first: { ja: '先頭へ', en: 'First' },
  page: { ja: 'ページ', en: 'Page' },
  reload: { ja: '再読み込み', en: 'Reload' },
  all: { ja: 'すべて', en: 'All' },
  total: { ja: '合計', en: 'Total' },
  yes: { ja: 'はい', en: 'Yes' },
  no: { ja: 'いいえ', en: 'No' },
  liveOn: { ja: 'ライブ更新中', en: 'Live' },
  livePolling: { ja: '定期更新中 (5 秒ごと)', en: 'Polling every 5 s' },
  confirmAll: {
    ja: 'この配信のすべての対象ジョブに実行します。よろしいですか?',
    en: 'This applies to every matching job of the distribution. Continue?',
  },
  changedN: { ja: '{n} 件を変更しました', en: '{n} changed' },

  distributions: { ja: '配信履歴', en: 'Distributions' },
  distribution: { ja: '配信', en: 'Distribution' },
  created: { ja: '作成日時', en: 'Created' },
  kind: { ja: '種類', en: 'Kind' },
  kind_install: { ja: 'インストール', en: 'Install' },
  kind_uninstall: { ja: 'アンインストール', en: 'Uninstall' },
  apps: { ja: 'App (Adam ID)', en: 'Apps (Adam ID)' },
  licenseMode: { ja: 'ライセンス', en: 'Licences' },
  licenseMode_auto: { ja: '自動割当', en: 'auto-assign' },
  licenseMode_manual: { ja: '手動', en: 'manual' },
  jobs: { ja: 'ジョブ', en: 'Jobs' },
  progress: { ja: '状況', en: 'Progress' },
  counts: { ja: 'ステータス別件数', en: 'Jobs per status' },
  status: { ja: 'ステータス', en: 'Status' },
  filterStatus: { ja: 'ステータスで絞り込み', en: 'Filter by status' },
  downloadCsv: { ja: 'CSV をダウンロード', en: 'Download CSV' },
  retryFailed: { ja: '失敗したジョブを再試行', en: 'Retry failed jobs' },
  cancelPending: { ja: '未完了のジョブをキャンセル', en: 'Cancel unfinished jobs' },
  noDistributions: {
    ja: '配信はまだありません。「新しい配信」か CLI (haishin distribute) で作成します。',
    en: 'No distributions yet. Create one with "New distribution" or the CLI (haishin distribute).',
  },
  newDistribution: { ja: '新しい配信', en: 'New distribution' },
  closeForm: { ja: 'フォームを閉じる', en: 'Close the form' },
  vppToken: { ja: 'VPP トークン', en: 'VPP token' },
  scheduleAt: { ja: '予約日時 (任意)', en: 'Schedule (optional)' },
  scheduleHelp: { ja: '空欄なら今すぐ配信します。', en: 'Empty: distribute now.' },
  appsToDistribute: { ja: '配信する App', en: 'Apps to distribute' },
  noAssets: {
    ja: 'このトークンには App がありません (同期してください)。',
    en: 'This token holds no apps (sync it).',
  },
  licencesLeftN: { ja: '残りライセンス {n}', en: '{n} licences left' },
  targets: { ja: '配信先', en: 'Targets' },
  targetGroups: { ja: 'グループ (複数選択可)', en: 'Groups (several allowed)' },
  targetSerials: {
    ja: '端末のシリアル番号 (改行・カンマ区切り)',
    en: 'Devices by serial number (one per line or comma-separated)',
  },
  preflight: { ja: '事前チェック', en: 'Pre-flight' },
  distribute: { ja: '配信する', en: 'Distribute' },
  preflightClean: {
    ja: '{total} 台中 {n} 台は問題ありません。',
    en: '{n} of {total} devices show no problem.',
  },
  preflightProblems: {
    ja: '{n} 台で問題が予想されます:',
    en: '{n} devices are expected to have problems:',
  },
  topCause: { ja: '主な原因', en: 'Top cause' },
  moreCausesN: { ja: 'ほか {n} 件の原因', en: '{n} more causes' },
  serialsNotFound: {
    ja: '次のシリアル番号の端末は登録されていません: {serials}',
    en: 'No enrolled device has these serial numbers: {serials}',
  },
  tooManySerials: {
    ja: 'シリアル番号は一度に {n} 件までです。多い場合はグループを指定してください。',
    en: 'At most {n} serial numbers at a time; target a group for more.',
  },

  job: { ja: 'ジョブ', en: 'Job' },
  device: { ja: '端末', en: 'Device' },
  app: { ja: 'App', en: 'App' },
  attempt: { ja: '試行', en: 'Attempt' },
  retries: { ja: 'リトライ回数', en: 'Retries' },
  updated: { ja: '更新日時', en: 'Updated' },
  reason: { ja: '理由', en: 'Reason' },
  error: { ja: 'エラー', en: 'Error' },
  retry: { ja: '再試行', en: 'Retry' },
  cancel: { ja: 'キャンセル', en: 'Cancel' },
  supportBundle: { ja: 'サポート情報 (JSON)', en: 'Support bundle (JSON)' },
  supportBundleText: { ja: 'サポート情報 (テキスト)', en: 'Support bundle (text)' },
  history: { ja: 'ステータス履歴', en: 'Status history' },
  at: { ja: '日時', en: 'At' },
  from: { ja: '変更前', en: 'From' },
  to: { ja: '変更後', en: 'To' },
  errorChain: { ja: 'ErrorChain (端末の応答)', en: 'ErrorChain (device answer)' },
  rawError: { ja: '生データ', en: 'Raw' },
  code: { ja: 'コード', en: 'Code' },
  domain: { ja: 'ドメイン', en: 'Domain' },
  description: { ja: '説明', en: 'Description' },
  rejectionReason: { ja: 'RejectionReason', en: 'RejectionReason' },
  diagnosis: { ja: '診断 (可能性の高い順)', en: 'Diagnosis (most likely first)' },
  noCauses: { ja: '原因は見つかりませんでした。', en: 'No cause found.' },
  askedDevice: {
    ja: '端末情報が古いため端末に問い合わせました ({what})。応答後にもう一度診断してください。',
    en: 'Device facts were missing or stale, so the device was asked ({what}). Diagnose again once it answered.',
  },
  diagnoseAgain: { ja: '再診断', en: 'Diagnose again' },
  confidence: { ja: '確度', en: 'Confidence' },
  evidence: { ja: '根拠', en: 'Evidence' },
  fact: { ja: '事実', en: 'Fact' },
  value: { ja: '値', en: 'Value' },
  source: { ja: '出典', en: 'Source' },
  remedy: { ja: '対処', en: 'Remedy' },
  done: { ja: '実行しました', en: 'Done' },
  notDone: { ja: '自動では実行できません', en: 'Not done automatically' },

  devices: { ja: '端末', en: 'Devices' },
  deviceNumber: { ja: '端末番号', en: 'Device no.' },
  name: { ja: '名前', en: 'Name' },
  serial: { ja: 'シリアル番号', en: 'Serial number' },
  model: { ja: '機種', en: 'Model' },
  os: { ja: 'OS', en: 'OS' },
  group: { ja: 'グループ', en: 'Group' },
  includeSubgroups: { ja: '下位グループを含む', en: 'Include subgroups' },
  sharedIpad: { ja: '共有 iPad', en: 'Shared iPad' },
  supervised: { ja: '監視対象', en: 'Supervised' },
  lastSeen: { ja: '最終接続', en: 'Last seen' },
  enrolledAt: { ja: '登録日時', en: 'Enrolled' },
  search: { ja: '検索', en: 'Search' },
  facts: { ja: '端末情報 (DeviceInformation)', en: 'Facts (DeviceInformation)' },
  restrictions: { ja: '適用中の制限', en: 'Restrictions in force' },
  sharedUsers: { ja: '共有 iPad のユーザー', en: 'Shared iPad users' },
  installedApps: { ja: 'インストール済み App', en: 'Installed apps' },
  managedApps: { ja: '管理対象 App', en: 'Managed apps' },
  readAt: { ja: '取得日時', en: 'Read at' },
  refreshDevice: { ja: '端末情報を更新', en: 'Refresh device info' },
  refreshSent: { ja: '問い合わせを送りました', en: 'Queries sent' },
  deviceJobs: { ja: 'この端末のジョブ', en: 'Jobs of this device' },

  groups: { ja: 'グループ', en: 'Groups' },
  tokensHere: { ja: '登録トークン', en: 'Registered tokens' },
  sharedHere: { ja: '共有されたトークン', en: 'Shared tokens' },
  autoAssign: { ja: '自動割当トークン', en: 'Auto-assign token' },
  showAutoAssign: { ja: '自動割当を表示', en: 'Show auto-assign' },
  inheritedFrom: { ja: '継承元', en: 'inherited from' },
  ownSetting: { ja: 'このグループの設定', en: 'set on this group' },
  showDevices: { ja: '端末を表示', en: 'Show devices' },

  tokens: { ja: 'VPP トークン', en: 'VPP tokens' },
  org: { ja: '組織', en: 'Organization' },
  location: { ja: 'ロケーション', en: 'Location' },
  state: { ja: '状態', en: 'State' },
  expires: { ja: '有効期限', en: 'Expires' },
  daysLeft: { ja: '残り日数', en: 'Days left' },
  daysLeftN: { ja: 'あと {n} 日', en: '{n} days left' },
  expiryWarning: {
    ja: '期限まで {n} 日以内です。更新してください。',
    en: 'Expires within {n} days: renew it.',
  },
  sharedTo: { ja: '共有先', en: 'Shared to' },
  lastSynced: { ja: '最終同期', en: 'Last synced' },
  sync: { ja: '同期', en: 'Sync' },
  syncedN: { ja: '{n} 件の App を同期しました', en: '{n} apps synced' },
  assets: { ja: 'App とライセンス', en: 'Apps and licences' },
  licences: { ja: '割当 / 合計 (残り)', en: 'Assigned / total (left)' },
  noTokens: { ja: 'VPP トークンは登録されていません。', en: 'No VPP token is registered.' },

  explainTitle: { ja: 'エラーを解説', en: 'Explain an error' },
  explainHelp: {
    ja: '端末・他社 MDM・ログのエラー文 (ErrorChain、plist、VPP の JSON) を貼り付けてください。',
    en: 'Paste an error as shown by a device, another MDM console or a log (ErrorChain line, plist, VPP JSON).',
  },
  explain: { ja: '解説する', en: 'Explain' },
  parsedChain: { ja: '読み取った ErrorChain', en: 'ErrorChain as read' },

  navServer: { ja: 'サーバー', en: 'Server' },
  server: { ja: 'サーバーの状態', en: 'Server status' },
  version: { ja: 'バージョン', en: 'Version' },
  instanceId: { ja: 'インスタンス ID (mdmInfo.id)', en: 'Instance ID (mdmInfo.id)' },
  serverTime: { ja: 'サーバー時刻', en: 'Server time' },
  pushCertificate: { ja: 'MDM プッシュ証明書', en: 'MDM push certificate' },
  pushTopic: { ja: 'トピック', en: 'Topic' },
  pushNotConfigured: {
    ja: 'APNs が設定されていないため、PUSH は送信されません。',
    en: 'APNs is not configured: no pushes are sent.',
  },
  unknown: { ja: '不明', en: 'Unknown' },
  apnsAlert: { ja: 'APNs の警告', en: 'APNs alert' },
  noAlert: { ja: 'なし', en: 'None' },
  deviceCa: { ja: '端末 CA (haishin 発行)', en: 'Device CA (issued by haishin)' },
  deviceCaVerifying: {
    ja: '検証に使う CA の数 (発行中 + ローテーション前)',
    en: 'CAs that verify devices (issuing + rotated out)',
  },
  deviceIdentities: { ja: '端末の識別証明書', en: 'Device identities' },
  identitiesExpired: {
    ja: '期限切れ (再登録が必要)',
    en: 'Expired (the device must enroll again)',
  },
  identitiesExpiring: { ja: '更新期間内 (未更新)', en: 'Within the renewal window, not renewed yet' },
  identitiesRenewing: { ja: '更新を送信済み (端末の応答待ち)', en: 'Renewal sent, waiting for the device' },
  identityNotAfter: { ja: '識別証明書の有効期限', en: 'Identity expires' },
  identityRenewing: { ja: '更新を送信済み ({at})', en: 'renewal sent ({at})' },
  identityExpired: { ja: '期限切れ: 再登録が必要です', en: 'expired: enroll the device again' },
  bannerIdentitiesExpired: {
    ja: '{n} 台の端末の識別証明書が期限切れです。haishin はこれらの端末からの接続を拒否しています。',
    en: "{n} devices' identities have expired: haishin refuses everything they send.",
  },
  bannerIdentitiesRemedy: {
    ja: '対処: 更新期間 (HAISHIN_IDENTITY_RENEW_BEFORE) の間ずっとオフラインだった端末です。端末の「設定 > 一般 > VPNとデバイス管理」で haishin のプロファイルを削除し、登録用リンクからもう一度登録してください。端末番号とグループは引き継がれます。',
    en: "Remedy: these devices were offline through their renewal window (HAISHIN_IDENTITY_RENEW_BEFORE). Remove haishin's profile on each device (Settings > General > VPN & Device Management) and enroll it again from an enrollment link; its device number and group are kept.",
  },
  openDevices: { ja: '該当する端末を開く', en: 'Open those devices' },
  identityExpiredOnly: { ja: '識別証明書が期限切れの端末のみ', en: 'Only expired identities' },
  tokensExpiring: { ja: '30 日以内に期限切れ', en: 'Expiring within 30 days' },
  tokensExpired: { ja: '期限切れ', en: 'Expired' },
  tokensRevoked: { ja: 'Apple が失効', en: 'Revoked by Apple' },
  tokensInvalid: { ja: 'Apple が認証できない', en: 'Not accepted by Apple' },
  deviceCounts: { ja: '状態別の端末数', en: 'Devices per status' },

  bannerPushAlert: {
    ja: 'APNs がプッシュ証明書を拒否しました ({detail}、{at})。証明書を更新するまで、すべての PUSH が失敗し端末は新しい命令を受け取れません。',
    en: 'APNs refused the push certificate ({detail}, {at}). Until it is renewed every push fails and devices receive no new commands.',
  },
  bannerPushExpired: {
    ja: 'プッシュ証明書の有効期限が切れています ({date})。すべての PUSH が失敗します。',
    en: 'The push certificate expired on {date}: every push fails.',
  },
  bannerPushExpiring: {
    ja: 'プッシュ証明書の有効期限まであと {n} 日です ({date})。',
    en: 'The push certificate expires in {n} days ({date}).',
  },
  bannerPushRemedy: {
    ja: '対処: 証明書を作成した Apple ID で https://identity.apple.com/pushcert にサインインし、同じ証明書を「更新」してください (新規作成するとトピックが変わり、全端末の再登録が必要になります)。更新した証明書は「サーバー」ページからアップロードできます (再起動は不要)。HAISHIN_APNS_CERT / HAISHIN_APNS_KEY に置いて haishin を再起動しても構いません。',
    en: 'Remedy: sign in to https://identity.apple.com/pushcert with the Apple ID that created the certificate and "Renew" that same certificate (a new one changes the topic and every device would have to enroll again). Upload the renewed certificate on the Server page (no restart), or put it in HAISHIN_APNS_CERT / HAISHIN_APNS_KEY and restart haishin.',
  },
  bannerTokens: {
    ja: 'VPP トークン: {expiring} 件が 30 日以内に期限切れ、{expired} 件が期限切れです。',
    en: 'VPP tokens: {expiring} expiring within 30 days, {expired} expired.',
  },
  bannerTokensRemedy: {
    ja: '対処: Apple School Manager / Business Manager の「設定 > App とブック」から新しいトークンをダウンロードし、VPP トークンのページで更新してください。期限切れのトークンではライセンスを割り当てられません。',
    en: 'Remedy: download a new token from Apple School Manager / Business Manager (Settings > Apps and Books) and renew it on the VPP tokens page. An expired token cannot assign licences.',
  },
  bannerTokensRefused: {
    ja: 'VPP トークン: {revoked} 件が Apple により失効 (9625)、{invalid} 件が Apple に認証されません (9622)。このトークンではライセンスを割り当てられず、配信は失敗します。',
    en: 'VPP tokens: {revoked} revoked by Apple (9625), {invalid} not accepted by Apple (9622). No licence can be assigned with them: distributions fail.',
  },
  bannerTokensRefusedRemedy: {
    ja: '対処: Apple School Manager / Business Manager の「設定 > App とブック」から同じロケーションのトークンをダウンロードし直し、ファイルを編集せずに VPP トークンのページで更新してください。失効は管理者のパスワード変更やトークンの再ダウンロードで起こります。',
    en: 'Remedy: download the token of the same location again from Apple School Manager / Business Manager (Settings > Apps and Books) and, without editing the file, renew it on the VPP tokens page. Apple revokes a token when the administrator password changes or the token is downloaded again.',
  },
  openTokens: { ja: 'VPP トークンを開く', en: 'Open VPP tokens' },
  openServer: { ja: 'サーバーの状態を開く', en: 'Open server status' },

  navApps: { ja: 'アプリ', en: 'Apps' },
  appsTitle: { ja: 'アプリとアップデート', en: 'Apps and updates' },
  appsHelp: {
    ja: 'VPP トークンのアプリの App Store 上の最新バージョンと、端末が報告したバージョン別の台数です。haishin は 6 時間ごとと、トークンの同期のたびに確認します。台数は端末のインストール済み App の一覧から数えます (古い場合は「端末情報を更新」)。',
    en: 'The newest App Store version of each app of the VPP tokens, and how many devices report each version. haishin checks every 6 hours and after each token sync. Devices are counted from their installed-app lists (refresh devices whose list is old).',
  },
  checkUpdates: { ja: 'アップデートを今すぐ確認', en: 'Check for updates now' },
  checkedN: {
    ja: '{asked} 件を確認しました。新しいバージョン: {n} 件。自動アップデート: {jobs} 台。',
    en: '{asked} apps checked. New versions: {n}. Automatic updates: {jobs} devices.',
  },
  noApps: {
    ja: 'アプリはまだありません。VPP トークンを登録して同期してください。',
    en: 'No apps yet: register and sync a VPP token.',
  },
  latestVersion: { ja: '最新バージョン', en: 'Latest version' },
  previousVersion: { ja: '前のバージョン', en: 'Previous' },
  versionSeenAt: { ja: '公開を確認した日時', en: 'Seen since' },
  devicesByVersion: { ja: 'バージョン別の台数', en: 'Devices by version' },
  outdatedDevices: { ja: '古いバージョンの台数', en: 'Devices on an older version' },
  updateAvailable: { ja: 'アップデートあり', en: 'Update available' },
  upToDate: { ja: '最新', en: 'Up to date' },
  versionUnknown: { ja: '未確認', en: 'Not checked yet' },
  updateN: { ja: '{n} 台をアップデート', en: 'Update {n} devices' },
  confirmUpdate: {
    ja: '{name} のバージョン {version} を、古いバージョンの {n} 台に配信します。よろしいですか?',
    en: 'Distribute version {version} of {name} to the {n} devices on an older version?',
  },
  updateStarted: {
    ja: 'バージョン {version} を {n} 台に配信しました。',
    en: 'Version {version} is being distributed to {n} devices.',
  },
  updateNothing: { ja: 'アップデートが必要な端末はありません。', en: 'No device needs the update.' },
  kind_update: { ja: 'アップデート', en: 'Update' },
  expectedVersion: { ja: '期待するバージョン', en: 'Expected version' },
  installedVersion: { ja: '端末のバージョン', en: 'Version on the device' },
  keepUpdated: { ja: 'アプリを最新に保つ', en: 'Keep apps up to date' },
  keepInherit: { ja: '上位グループに従う', en: 'Follow the parent groups' },
  keepOn: { ja: 'オン (新しいバージョンを自動で配信)', en: 'On (distribute new versions automatically)' },
  keepOff: { ja: 'オフ', en: 'Off' },
  keepInForce: { ja: '現在: {value}', en: 'In force: {value}' },
  on: { ja: 'オン', en: 'on' },
  off: { ja: 'オフ', en: 'off' },
  keepStartedN: { ja: '{n} 台のアップデートを開始しました', en: 'Updates started on {n} devices' },

  navAudit: { ja: '操作履歴', en: 'Audit' },
  navAdmins: { ja: '管理者', en: 'Administrators' },
  role_owner: { ja: 'オーナー', en: 'owner' },
  role_admin: { ja: '管理者', en: 'admin' },
  role_operator: { ja: 'オペレーター', en: 'operator' },
  role_viewer: { ja: '閲覧者', en: 'viewer' },
  auditTitle: { ja: '操作履歴 (監査ログ)', en: 'Audit trail' },
  auditHelp: {
    ja: '誰が・いつ・どこから・何を変更したか。haishin 自身の処理 (system, apple) も記録されます。秘密情報は記録しません。',
    en: 'Who changed what, when and from where. haishin’s own work (system, apple) is recorded too. No secret is ever recorded.',
  },
  auditKind: { ja: '種類 (例: group, token.register)', en: 'Kind (e.g. group, token.register)' },
  auditActor: { ja: '操作者 (トークン名または ID)', en: 'Actor (token name or id)' },
  auditTarget: { ja: '対象 ID', en: 'Target id' },
  auditFrom: { ja: '開始日時', en: 'From' },
  auditTo: { ja: '終了日時', en: 'To' },
  auditAt: { ja: '日時', en: 'When' },
  auditWho: { ja: '操作者', en: 'Who' },
  auditSource: { ja: '接続元', en: 'From address' },
  auditAction: { ja: '操作', en: 'Action' },
  auditObject: { ja: '対象', en: 'Target' },
  auditDetails: { ja: '内容', en: 'Details' },
  auditNone: { ja: '該当する操作はありません', en: 'No matching events' },
  auditCsv: { ja: 'CSV をダウンロード', en: 'Download CSV' },
  auditApply: { ja: '絞り込む', en: 'Filter' },

  networkError: { ja: 'サーバーに接続できません', en: 'Cannot reach the server' },
  notFound: { ja: 'ページが見つかりません', en: 'Page not found' },
} as const satisfies Record<string, Bilingual>;

export type MessageKey = keyof typeof M;

export function format(text: string, params: Record<string, string | number> = {}): string {
  return text.replace(/\{(\w+)\}/g, (all, key: string) => (key in params ? String(params[key]) : all));
}
