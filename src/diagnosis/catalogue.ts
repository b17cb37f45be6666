import type { JobStatus } from '../core/jobs.ts';
import type { Bilingual } from '../core/messages.ts';

/**
 * DESIGN §5. The codes are API contract: the console, tests and saved diagnoses rely on them, so
 * this list only ever grows, and in the order of the design table.
 */
export const CAUSE_CODES = [
  'token.expired',
  'token.not_migrated',
  'token.not_shared',
  'token.not_registered',
  'token.other_mdm',
  'token.revoked',
  'token.invalid',
  'push.certificate_invalid',
  'device.powered_off_or_offline',
  'device.unenrolled',
  'network.inactive',
  'network.wifi_required_for_size',
  'network.apple_blocked',
  'network.filtering',
  'autoassign.token_misconfigured',
  'autoassign.inherited_only',
  'license.not_assigned',
  'license.insufficient',
  'license.apple_refused',
  'app.not_device_assignable',
  'app.installed_unmanaged',
  'device.store_transient',
  'app.distributed_as_store_app',
  'app.requirements_unmet',
  'app.apple_builtin',
  'app.iwork_preinstalled',
  'device.storage_insufficient',
  'policy.app_status_blocks',
  'restriction.content_rating',
  'shared_ipad.users_logged_in',
  'device.restored_from_backup',
  'device.error_unknown',
  'app.update_not_applied',
  'device.identity_expired',
] as const;

export type CauseCode = (typeof CAUSE_CODES)[number];

/**
 * What haishin can do about a cause, as offered by `POST /jobs/:id/remediate {action}` and the
 * console's buttons. Some need the administrator to bring something (a new token file), but each
 * has one place in haishin where it is done.
 */
export const ACTIONS = [
  'renew_token',
  'migrate_token',
  'register_token',
  'share_token',
  'takeover_token',
  'sync_token',
  'set_auto_assign',
  'assign_license',
  'reclaim_and_reassign',
  'take_over_unmanaged_app',
  'refresh_device_info',
  'logout_users',
  'retry',
  'cancel',
] as const;

export type Action = (typeof ACTIONS)[number];

export interface CatalogueEntry {
  code: CauseCode;
  title: Bilingual;
  /** What happened, what to do, and where in haishin (console path and API call). */
  remedy: Bilingual;
  actions: readonly Action[];
  /** True only when haishin applies the remedy by itself (a transient error it retries). */
  automatic: boolean;
}

type Entry = Omit<CatalogueEntry, 'code'>;

const ENTRIES: Record<CauseCode, Entry> = {
  'token.expired': {
    title: { ja: 'VPPトークンの有効期限が切れています', en: 'The VPP token has expired' },
    remedy: {
      ja: 'VPPトークンは発行から1年で期限が切れ、期限切れのトークンではライセンスの割り当ても配信もできません。Apple School Manager / Apple Business Manager の「設定 → お支払いと請求」から同じロケーションの新しいトークン（.vpptoken）をダウンロードし、haishin の「VPPトークン → 対象のトークン → 更新」でアップロードしてください（API: PUT /api/v1/vpp-tokens/:id）。このトークンを使っていた自動割り当て設定は、更新後のトークンに自動で切り替わります。更新が済んだらジョブを再実行してください。',
      en: 'A VPP token expires one year after it is issued, and with an expired token haishin can neither assign licences nor distribute. Download a new token (.vpptoken) for the same location from Apple School Manager / Apple Business Manager (Settings → Payments and Billing) and upload it in haishin under VPP tokens → the token → Renew (API: PUT /api/v1/vpp-tokens/:id). Auto-assign settings that used this token switch to the renewed one by themselves. Then retry the job.',
    },
    actions: ['renew_token', 'retry'],
    automatic: false,
  },
  'token.not_migrated': {
    title: {
      ja: 'VPPトークンが旧形式のまま移行されていません',
      en: 'The VPP token is still in its legacy form and has not been migrated',
    },
    remedy: {
      ja: 'このトークンは旧形式（従来の VPP の仕組み向け）で登録されているため、現在の Apps and Books API ではライセンスを割り当てられません。Apple School Manager / Apple Business Manager から同じロケーションの最新のトークンをダウンロードし、「VPPトークン → 対象のトークン → 移行（更新）」でアップロードしてください（API: PUT /api/v1/vpp-tokens/:id）。haishin がロケーションを自分のサーバーとして登録し直し、移行が完了します。その後ジョブを再実行してください。',
      en: 'This token was registered in its legacy form (for the old VPP service), so licences cannot be assigned through the current Apps and Books API. Download the current token for the same location from Apple School Manager / Apple Business Manager and upload it under VPP tokens → the token → Migrate (Renew) (API: PUT /api/v1/vpp-tokens/:id). haishin then claims the location for itself and the migration is complete. Then retry the job.',
    },
    actions: ['migrate_token', 'retry'],
    automatic: false,
  },
  'token.not_shared': {
    title: {
      ja: '端末のグループにVPPトークンが共有されていません',
      en: "The VPP token is not shared to the device's group",
    },
    remedy: {
      ja: '配信に使ったトークンは別のグループに登録されていて、端末が所属するグループには共有されていません。トークンが使えるのは、登録先のグループと、そこから明示的に共有した下位グループだけです。「VPPトークン → 対象のトークン → 共有」で端末のグループを追加してください（API: POST /api/v1/vpp-tokens/:id/shares、本文 {"groupId": "…"}）。共有できるのは登録先グループの下位グループだけなので、端末のグループが下位にない場合は、端末を下位グループへ移動するか、そのグループにトークンを登録してください。その後ジョブを再実行してください。',
      en: 'The token used for this distribution is registered to another group and has not been shared to the group the device belongs to. A token can be used only in the group it is registered to and in the subgroups it has been explicitly shared to. Add the device\'s group under VPP tokens → the token → Share (API: POST /api/v1/vpp-tokens/:id/shares with {"groupId": "…"}). Only subgroups of the registered group can receive a share: if the device\'s group is not below it, move the device into such a subgroup or register a token to its group. Then retry the job.',
    },
    actions: ['share_token', 'retry'],
    automatic: false,
  },
  'token.not_registered': {
    title: {
      ja: '端末のグループで使えるVPPトークンがありません',
      en: "No VPP token is available to the device's group",
    },
    remedy: {
      ja: '端末が所属するグループには、登録されたトークンも共有されたトークンもないため、ライセンスを割り当てられません。Apple School Manager / Apple Business Manager の「設定 → お支払いと請求」からトークン（.vpptoken）をダウンロードし、「VPPトークン → 登録」でグループを選んで登録してください（API: POST /api/v1/vpp-tokens）。上位のグループに登録済みのトークンがある場合は、そのトークンをこのグループへ共有することもできます（POST /api/v1/vpp-tokens/:id/shares）。',
      en: "The device's group has no token registered to it and none shared to it, so no licence can be assigned. Download a token (.vpptoken) from Apple School Manager / Apple Business Manager (Settings → Payments and Billing) and register it for the group under VPP tokens → Register (API: POST /api/v1/vpp-tokens). If an upper group already has a token, you can share that token to this group instead (POST /api/v1/vpp-tokens/:id/shares).",
    },
    actions: ['register_token', 'share_token'],
    automatic: false,
  },
  'token.other_mdm': {
    title: {
      ja: 'VPPトークンが別のMDMサーバーでも使われています',
      en: 'The VPP token is claimed by another MDM server',
    },
    remedy: {
      ja: '同じロケーションのトークンを別のMDMサーバー（以前使っていたMDMや試用中の製品など）が使用しています。このままでは haishin が割り当てたライセンスがもう一方に回収されたり、「License not found（9610）」が時々発生したりします。1つのロケーションは1つのMDMサーバーだけで使ってください。もう一方のMDMでこのトークンの使用をやめてから、「VPPトークン → 対象のトークン → 引き継ぐ」を実行してください（API: POST /api/v1/vpp-tokens/:id/takeover）。引き継ぐと、もう一方のMDMはこのロケーションを管理できなくなります。',
      en: 'Another MDM server (a previous MDM, a product on trial, …) uses a token of the same location. As long as both use it, licences haishin assigns can be taken back by the other server, and "License not found (9610)" appears now and then. A location must be used by one MDM server only. Stop using the token in the other MDM, then choose VPP tokens → the token → Take over (API: POST /api/v1/vpp-tokens/:id/takeover). After the takeover the other MDM can no longer manage this location.',
    },
    actions: ['takeover_token', 'retry'],
    automatic: false,
  },
  'token.revoked': {
    title: { ja: 'VPPトークンがAppleによって無効にされました', en: 'Apple has revoked the VPP token' },
    remedy: {
      ja: 'Apple がこのトークンを無効にしました（Apple のエラー 9625）。管理者アカウントのパスワードを変更したときや、同じロケーションのトークンをダウンロードし直したときに起こります。Apple School Manager / Apple Business Manager から最新のトークンをダウンロードし、「VPPトークン → 対象のトークン → 更新」でアップロードしてください（API: PUT /api/v1/vpp-tokens/:id）。その後ジョブを再実行してください。',
      en: "Apple revoked this token (Apple error 9625). This happens when the administrator account's password is changed or when a token for the same location is downloaded again. Download the current token from Apple School Manager / Apple Business Manager and upload it under VPP tokens → the token → Renew (API: PUT /api/v1/vpp-tokens/:id). Then retry the job.",
    },
    actions: ['renew_token', 'retry'],
    automatic: false,
  },
  'token.invalid': {
    title: { ja: 'VPPトークンのファイルが正しくありません', en: 'The VPP token file is not valid' },
    remedy: {
      ja: 'Apple がこのトークンを認証できませんでした（Apple のエラー 9622 / 9722）。ファイルが壊れている、途中で切れている、またはコンテンツトークン（.vpptoken）ではない別のファイルである可能性があります。Apple School Manager / Apple Business Manager の「設定 → お支払いと請求」からトークンをダウンロードし直し、ファイルを開いたり編集したりせずに「VPPトークン → 対象のトークン → 更新」でアップロードしてください（API: PUT /api/v1/vpp-tokens/:id）。',
      en: 'Apple could not authenticate this token (Apple error 9622 / 9722). The file may be damaged or cut short, or it is not a content token (.vpptoken) at all. Download the token again from Apple School Manager / Apple Business Manager (Settings → Payments and Billing) and, without opening or editing the file, upload it under VPP tokens → the token → Renew (API: PUT /api/v1/vpp-tokens/:id).',
    },
    actions: ['renew_token', 'retry'],
    automatic: false,
  },
  'push.certificate_invalid': {
    title: { ja: 'haishin のプッシュ証明書が使えません', en: "haishin's push certificate is not usable" },
    remedy: {
      ja: 'Apple のプッシュ通知サービス（APNs）が haishin のMDMプッシュ証明書を受け付けていません。証明書の期限切れ・失効、または別のトピック用の証明書を設定していることが考えられます。この状態ではどの端末にも通知が届かず、ジョブは「PUSH送信中」から進みません。Apple Push Certificates Portal（identity.apple.com）に、証明書を作成したときと同じ Apple アカウントでサインインし、既存の証明書を「更新」してください（新しく作成するとトピックが変わり、すべての端末の登録し直しが必要になります）。更新した証明書と秘密鍵を管理コンソールの「サーバー」ページ、または haishin push-cert replace でアップロードし（再起動は不要です。PUT /api/v1/push-certificate）、ジョブを再実行してください。',
      en: "Apple's push service (APNs) refuses haishin's MDM push certificate: it has expired or been revoked, or it belongs to another topic. While this lasts no device receives a notification and jobs stay in Sending push. Sign in to the Apple Push Certificates Portal (identity.apple.com) with the same Apple Account that created the certificate and renew the existing certificate (creating a new one changes the topic, and every device would have to enroll again). Upload the renewed certificate and key on the console's Server page or with haishin push-cert replace (no restart; PUT /api/v1/push-certificate), then retry the jobs.",
    },
    actions: ['retry'],
    automatic: false,
  },
  'device.powered_off_or_offline': {
    title: { ja: '端末の電源が切れているか、オフラインです', en: 'The device is switched off or offline' },
    remedy: {
      ja: 'haishin は通知を送りましたが、その後端末から接続がありません（最後に接続した日時は根拠欄にあります）。端末の電源を入れてロックを解除し、Wi-Fi などのネットワークにつながっていることを確認してください。端末が接続すればジョブは自動的に進みます。しばらくしても変わらない場合は、端末の電源または Wi-Fi をいったんオフにしてからオンにし、「ジョブ → 再実行」を押してください（API: POST /api/v1/jobs/:id/retry）。端末の情報は「端末 → 情報を更新」で取り直せます（POST /api/v1/devices/:id/refresh）。',
      en: 'haishin sent the notification, but the device has not connected since (its last contact is in the evidence). Switch the device on, unlock it and check that it is on Wi-Fi or another network. Once it connects, the job continues by itself. If nothing changes for a while, switch the device or its Wi-Fi off and on again and press Jobs → Retry (API: POST /api/v1/jobs/:id/retry). Devices → Refresh information (POST /api/v1/devices/:id/refresh) reads its facts again.',
    },
    actions: ['retry', 'refresh_device_info', 'cancel'],
    automatic: false,
  },
  'device.unenrolled': {
    title: { ja: '端末が管理から外れています', en: 'The device is no longer managed' },
    remedy: {
      ja: '端末からMDMプロファイルが削除されたか、端末が初期化されたため、haishin から指示を送れません（根拠: 端末からの管理解除の通知、APNs の 410 応答、または長期間接続がないこと）。配信を続けるには、端末をもう一度登録してください（Automated Device Enrollment、または登録用リンク GET /mdm/enroll?group=<グループID>）。登録し直したあとで配信し直してください。このジョブは「ジョブ → キャンセル」で終了できます（POST /api/v1/jobs/:id/cancel）。使わなくなった端末は「端末 → 無効化」でライセンスを回収できます（POST /api/v1/devices/:id/deactivate）。',
      en: 'The MDM profile was removed from the device, or the device was erased, so haishin can no longer send it anything (evidence: a check-out message from the device, an APNs 410 answer, or a long silence). To keep distributing to it, enroll the device again (Automated Device Enrollment, or the enrolment link GET /mdm/enroll?group=<group id>) and distribute again afterwards. End this job with Jobs → Cancel (POST /api/v1/jobs/:id/cancel). A device that is no longer used can be deactivated under Devices → Deactivate, which reclaims its licences (POST /api/v1/devices/:id/deactivate).',
    },
    actions: ['cancel'],
    automatic: false,
  },
  'network.inactive': {
    title: {
      ja: '端末が使えるネットワークにつながっていません',
      en: 'The device has no working network connection',
    },
    remedy: {
      ja: '端末がネットワークにつながっていないか、つながっていても通信できない状態です（機内モード、Wi-Fi のログインページで止まっている、電波が弱い場所にある、など）。端末の Safari で任意のWebサイトが開けるかを確認し、必要なら Wi-Fi に接続し直してください。通信できるようになったら「ジョブ → 再実行」を押してください（API: POST /api/v1/jobs/:id/retry）。',
      en: 'The device is not on a network, or it is on one but cannot communicate (flight mode, a Wi-Fi login page that was never completed, a weak signal, …). Check that Safari on the device can open any website and reconnect it to Wi-Fi if needed. Once it can communicate, press Jobs → Retry (API: POST /api/v1/jobs/:id/retry).',
    },
    actions: ['retry', 'cancel'],
    automatic: false,
  },
  'network.wifi_required_for_size': {
    title: {
      ja: 'アプリのサイズが大きいため Wi-Fi 接続が必要です',
      en: 'The app is too large to download over cellular data',
    },
    remedy: {
      ja: 'iOS / iPadOS 13 以降では 200 MB 以上、12 以前では 150 MB 以上のアプリは、モバイルデータ通信ではダウンロードされず、Wi-Fi につながるまで待機します。端末を Wi-Fi に接続してください。接続すればダウンロードが始まります。始まらない場合は「ジョブ → 再実行」を押してください（API: POST /api/v1/jobs/:id/retry）。',
      en: 'On iOS / iPadOS 13 and later an app of 200 MB or more, and before 13 one of 150 MB or more, is not downloaded over cellular data: the device waits for Wi-Fi. Connect the device to Wi-Fi and the download starts. If it does not, press Jobs → Retry (API: POST /api/v1/jobs/:id/retry).',
    },
    actions: ['retry', 'cancel'],
    automatic: false,
  },
  'network.apple_blocked': {
    title: {
      ja: 'ネットワークが Apple のサーバーとの通信を遮断しています',
      en: "The network blocks Apple's servers",
    },
    remedy: {
      ja: '端末は haishin とは通信できていますが、インストールが進みません。同じネットワークの他の端末でも同じように止まっている場合は、ファイアウォールやプロキシが Apple のサービス（プッシュ通知、App Store からのダウンロード、Apps and Books のライセンス確認）との通信を遮断している可能性が高いです。ネットワークの管理者に、Apple が公開している「Apple 製品が使うホストとポート」の一覧（apple.com、push.apple.com、mzstatic.com などのドメインと、TCP 443・5223）を許可するよう依頼してください。通信できるようになったら「ジョブ → 再実行」を押してください（API: POST /api/v1/jobs/:id/retry）。',
      en: "The device talks to haishin, yet the install does not progress. When other devices on the same network stall the same way, a firewall or proxy most likely blocks Apple's services (push notifications, App Store downloads, Apps and Books licence checks). Ask the network administrator to allow the hosts and ports Apple publishes for its products (domains such as apple.com, push.apple.com and mzstatic.com, TCP 443 and 5223). Once they are allowed, press Jobs → Retry (API: POST /api/v1/jobs/:id/retry).",
    },
    actions: ['retry', 'cancel'],
    automatic: false,
  },
  'network.filtering': {
    title: {
      ja: 'フィルタリングサービスがインストールを妨げています',
      en: 'A filtering service interferes with the install',
    },
    remedy: {
      ja: '端末はインストールの指示を受け付けましたが、インストールが終わりません。Webフィルタリングやコンテンツフィルター（端末のフィルタリングアプリ、プロキシ、通信内容を検査する機器など）が App Store からのダウンロードを妨げている可能性があります。フィルタリングの設定で Apple のドメインを検査・遮断の対象外にするか、一時的にフィルタリングのないネットワークにつないでから「ジョブ → 再実行」を押してください（API: POST /api/v1/jobs/:id/retry）。',
      en: "The device accepted the install command, but the install never finishes. A web or content filter (a filtering app on the device, a proxy, an appliance that inspects traffic) may be interfering with App Store downloads. Exempt Apple's domains from inspection and blocking in the filter, or connect the device to a network without filtering for a while, then press Jobs → Retry (API: POST /api/v1/jobs/:id/retry).",
    },
    actions: ['retry', 'cancel'],
    automatic: false,
  },
  'autoassign.token_misconfigured': {
    title: {
      ja: '自動割り当てのトークン設定が配信に使ったトークンと合っていません',
      en: 'The auto-assign token does not match the distribution token',
    },
    remedy: {
      ja: 'ライセンスの自動割り当てで配信しましたが、端末のグループに適用される自動割り当てトークン（グループ自身の設定、または上位グループから引き継いだ設定）が未設定か、配信に使ったトークンと違うため、ライセンスが割り当てられません。「グループ → 対象のグループ → 自動割り当てトークン」で配信に使ったトークンを設定してください（API: PUT /api/v1/groups/:id/auto-assign-token、本文 {"tokenId": "…"}）。「ライセンス → 割り当て」で手動で割り当てることもできます（POST /api/v1/licenses/assign）。その後ジョブを再実行してください。',
      en: 'This distribution relies on automatic licence assignment, but the auto-assign token that applies to the device\'s group (the group\'s own setting or one inherited from an upper group) is missing or is not the token used for the distribution, so no licence is assigned. Set the distribution\'s token under Groups → the group → Auto-assign token (API: PUT /api/v1/groups/:id/auto-assign-token with {"tokenId": "…"}), or assign the licence by hand under Licences → Assign (POST /api/v1/licenses/assign). Then retry the job.',
    },
    actions: ['set_auto_assign', 'assign_license', 'retry'],
    automatic: false,
  },
  'autoassign.inherited_only': {
    title: {
      ja: '上位グループの自動割り当て設定を引き継いでいますが、トークンが異なります',
      en: "The group relies on an upper group's auto-assign setting, which uses a different token",
    },
    remedy: {
      ja: 'このグループには自動割り当ての設定がなく、上位グループの設定（別のトークン）を引き継いでいます。上位と違うトークンで配信するグループは、グループ自身に自動割り当ての設定がないと、自動割り当てでライセンスを受け取れません。「グループ → 対象のグループ → 自動割り当てトークン」で、配信に使ったトークンをこのグループ自身に設定してください（API: PUT /api/v1/groups/:id/auto-assign-token）。その後ジョブを再実行してください。',
      en: "This group has no auto-assign setting of its own and inherits an upper group's setting, which uses another token. A group that distributes with a different token from the one it inherits can receive licences by auto-assignment only through a setting of its own. Set the distribution's token on this group under Groups → the group → Auto-assign token (API: PUT /api/v1/groups/:id/auto-assign-token). Then retry the job.",
    },
    actions: ['set_auto_assign', 'assign_license', 'retry'],
    automatic: false,
  },
  'license.not_assigned': {
    title: { ja: '端末にライセンスが割り当てられていません', en: 'No licence is assigned to the device' },
    remedy: {
      ja: 'Apple のライセンス割り当ての一覧に、この端末（シリアル番号）へのこのアプリのライセンスがありません。手動割り当てで配信する場合は、配信の前にライセンスを割り当てておく必要があります。「ライセンス → 割り当て」でトークン・アプリ・シリアル番号を指定して割り当ててください（API: POST /api/v1/licenses/assign）。割り当てたはずなのに失敗する場合は、「ジョブ → 回収して再割り当て」でライセンスを回収してから割り当て直してください（POST /api/v1/jobs/:id/remediate、本文 {"action": "reclaim_and_reassign"}）。その後ジョブを再実行してください。',
      en: 'Apple\'s list of licence assignments has no licence of this app for this device\'s serial number. A distribution in manual licence mode needs the licence assigned before it runs. Assign it under Licences → Assign with the token, the app and the serial number (API: POST /api/v1/licenses/assign). If the licence should already be there, reclaim it and assign it again with Jobs → Reclaim and reassign (POST /api/v1/jobs/:id/remediate with {"action": "reclaim_and_reassign"}). Then retry the job.',
    },
    actions: ['assign_license', 'reclaim_and_reassign', 'retry'],
    automatic: false,
  },
  'license.insufficient': {
    title: { ja: 'ライセンスの残り数が足りません', en: 'Not enough licences are left' },
    remedy: {
      ja: 'このアプリの未使用ライセンスが、配信に必要な数より少なくなっています（Apple のエラー 9709 もこれにあたります）。Apple School Manager / Apple Business Manager でライセンスを追加で購入するか、使っていない端末のライセンスを「ライセンス → 回収」で回収してください（API: POST /api/v1/licenses/reclaim）。購入したあとは「VPPトークン → 同期」で数を更新してから（POST /api/v1/vpp-tokens/:id/sync）、ジョブを再実行してください。',
      en: 'Fewer unused licences of this app are left than the distribution needs (Apple error 9709 means the same). Buy more licences in Apple School Manager / Apple Business Manager, or reclaim licences from devices that no longer need them under Licences → Reclaim (API: POST /api/v1/licenses/reclaim). After buying, update the counts with VPP tokens → Sync (POST /api/v1/vpp-tokens/:id/sync) and retry the job.',
    },
    actions: ['sync_token', 'retry', 'cancel'],
    automatic: false,
  },
  'license.apple_refused': {
    title: { ja: 'Apple がライセンスの割り当てを拒否しました', en: 'Apple refused the licence assignment' },
    remedy: {
      ja: 'Apple の Apps and Books がライセンスの割り当てを受け付けませんでした。Apple のエラー番号は根拠欄にあります。「ジョブ → 回収して再割り当て」でライセンスを回収して割り当て直すと解決することがあります（API: POST /api/v1/jobs/:id/remediate、本文 {"action": "reclaim_and_reassign"}）。解決しない場合は、根拠欄のエラー番号を添えて、サポートバンドル（GET /api/v1/jobs/:id/support-bundle）をお問い合わせ先に送ってください。',
      en: 'Apple\'s Apps and Books service did not accept the licence assignment; Apple\'s error number is in the evidence. Reclaiming the licence and assigning it again often helps: Jobs → Reclaim and reassign (API: POST /api/v1/jobs/:id/remediate with {"action": "reclaim_and_reassign"}). If it does not, send the support bundle (GET /api/v1/jobs/:id/support-bundle) with the error number to your support contact.',
    },
    actions: ['reclaim_and_reassign', 'retry', 'cancel'],
    automatic: false,
  },
  'app.not_device_assignable': {
    title: {
      ja: 'このアプリは端末にライセンスを割り当てられません',
      en: 'This app cannot be licensed to a device',
    },
    remedy: {
      ja: 'このアプリは提供元の設定により端末単位のライセンス割り当てに対応しておらず（Apple のエラー 9707）、利用者の Apple アカウント単位のライセンスが必要です。端末への割り当てでは配信できません。このジョブは「ジョブ → キャンセル」で終了し（API: POST /api/v1/jobs/:id/cancel）、端末割り当てに対応した別のアプリを選ぶか、アプリの提供元に端末割り当てへの対応を問い合わせてください。',
      en: "The app's developer has not made it available for device licensing (Apple error 9707): it needs a licence per user (Apple Account), so it cannot be distributed by assigning it to devices. End this job with Jobs → Cancel (API: POST /api/v1/jobs/:id/cancel) and choose an app that supports device assignment, or ask the developer to enable it.",
    },
    actions: ['cancel'],
    automatic: false,
  },
  'app.installed_unmanaged': {
    title: {
      ja: '管理されていない同じアプリがすでに入っています',
      en: 'An unmanaged copy of the app is already installed',
    },
    remedy: {
      ja: '利用者が自分でインストールした同じアプリが端末にあり、haishin の管理下にありません（AppAlreadyInstalled / 12025）。「ジョブ → 管理を引き継ぐ」を押すと、入っているアプリを管理対象に切り替えます（API: POST /api/v1/jobs/:id/remediate、本文 {"action": "take_over_unmanaged_app"}。監視対象でない端末では、利用者に確認が表示されます）。または端末でそのアプリを削除してから「ジョブ → 再実行」を押してください（POST /api/v1/jobs/:id/retry）。',
      en: 'A copy of the app that the user installed is already on the device, and haishin does not manage it (AppAlreadyInstalled / 12025). Jobs → Take over management switches the installed copy to managed (API: POST /api/v1/jobs/:id/remediate with {"action": "take_over_unmanaged_app"}; on an unsupervised device the user is asked to agree). Or delete the app on the device and press Jobs → Retry (POST /api/v1/jobs/:id/retry).',
    },
    actions: ['take_over_unmanaged_app', 'retry', 'cancel'],
    automatic: false,
  },
  'device.store_transient': {
    title: { ja: 'App Store または端末の一時的なエラーです', en: 'A temporary App Store or device error' },
    remedy: {
      ja: 'App Store 側の混雑や、同じインストール要求の重複などによる一時的なエラーです（ASDErrorDomain 506、Apple のエラー 9603 など）。haishin が時間をおいて自動的に再実行します（その間のステータスは「リトライ待機中(n)」です）。何度も繰り返す場合は、ジョブをキャンセルして（API: POST /api/v1/jobs/:id/cancel）、時間をおいてから配信し直してください。',
      en: 'A temporary error, such as a busy App Store or a duplicate install request (ASDErrorDomain 506, Apple error 9603, …). haishin retries by itself after a pause (meanwhile the status is Waiting to retry (n)). If it keeps coming back, cancel the job (API: POST /api/v1/jobs/:id/cancel) and distribute again later.',
    },
    actions: ['retry', 'cancel'],
    automatic: true,
  },
  'app.distributed_as_store_app': {
    title: {
      ja: 'VPPアプリではなく通常の App Store アプリとして送られました',
      en: 'The app was sent as a plain App Store app, not as a VPP app',
    },
    remedy: {
      ja: 'インストールの指示に VPP の購入方法（PurchaseMethod 1）が含まれていなかったため、端末は Apple アカウントでのサインインや購入を求め、インストールできませんでした。VPPトークンを指定した配信（API: POST /api/v1/distributions）なら VPP アプリとして送られます。ライセンスが割り当てられていることを確認し、「ジョブ → 再実行」で VPP アプリとして送り直してください（POST /api/v1/jobs/:id/retry）。',
      en: 'The install command did not carry the VPP purchase method (PurchaseMethod 1), so the device asked for an Apple Account sign-in or purchase and could not install. A distribution that names a VPP token (API: POST /api/v1/distributions) sends the app as a VPP app. Check that a licence is assigned, then send it again as a VPP app with Jobs → Retry (POST /api/v1/jobs/:id/retry).',
    },
    actions: ['assign_license', 'retry'],
    automatic: false,
  },
  'app.requirements_unmet': {
    title: {
      ja: '端末がアプリの動作条件を満たしていません',
      en: "The device does not meet the app's requirements",
    },
    remedy: {
      ja: 'アプリが必要とする条件（iOS / iPadOS のバージョン、対応する機種、Apple アカウントへのサインイン、SIM など）を、この端末が満たしていません。根拠欄でアプリの条件と端末の値を比べてください。OS が古い場合は端末をアップデートしてから「ジョブ → 再実行」を（API: POST /api/v1/jobs/:id/retry）、対応していない機種の場合はこの端末へのジョブをキャンセルしてください（POST /api/v1/jobs/:id/cancel）。端末の情報が古いかもしれない場合は「端末 → 情報を更新」で取り直してください（POST /api/v1/devices/:id/refresh）。',
      en: "The device does not meet a requirement of the app (iOS / iPadOS version, device model, Apple Account sign-in, SIM, …). Compare the app's requirement with the device's value in the evidence. If the OS is too old, update the device and press Jobs → Retry (API: POST /api/v1/jobs/:id/retry); if the model is not supported, cancel the job for this device (POST /api/v1/jobs/:id/cancel). If the device facts may be out of date, read them again with Devices → Refresh information (POST /api/v1/devices/:id/refresh).",
    },
    actions: ['refresh_device_info', 'retry', 'cancel'],
    automatic: false,
  },
  'app.apple_builtin': {
    title: {
      ja: 'Apple の標準アプリは VPP で配信できません',
      en: 'Apple built-in apps cannot be distributed through VPP',
    },
    remedy: {
      ja: 'このアプリは iOS / iPadOS に組み込まれている Apple の標準アプリなので、VPP アプリとして配信できません（12065）。標準アプリは端末に最初から入っています。ホーム画面に見当たらない場合は、機能制限やホーム画面の非表示の設定を確認してください。このジョブは「ジョブ → キャンセル」で終了してください（API: POST /api/v1/jobs/:id/cancel）。',
      en: 'This is an Apple app built into iOS / iPadOS, so it cannot be distributed as a VPP app (12065). Built-in apps are on the device from the start; if it is missing from the Home Screen, check the restrictions and whether it was hidden. End this job with Jobs → Cancel (API: POST /api/v1/jobs/:id/cancel).',
    },
    actions: ['cancel'],
    automatic: false,
  },
  'app.iwork_preinstalled': {
    title: {
      ja: 'プリインストールの iWork アプリを先に削除する必要があります',
      en: 'The pre-installed iWork app must be deleted first',
    },
    remedy: {
      ja: 'Keynote・Pages・Numbers は端末に最初から入っていることがあり、その状態のままでは VPP アプリとして配信できません。端末でアプリのアイコンを長押しし、「Appを削除」を選んで削除してから、「ジョブ → 再実行」を押してください（API: POST /api/v1/jobs/:id/retry）。アプリで作った書類は、削除の前に iCloud Drive などに保存しておいてください。',
      en: 'Keynote, Pages and Numbers can come pre-installed on the device, and while that copy is there they cannot be distributed as VPP apps. On the device, touch and hold the app icon, choose Remove App and delete it, then press Jobs → Retry (API: POST /api/v1/jobs/:id/retry). Save documents made with the app to iCloud Drive or elsewhere before deleting it.',
    },
    actions: ['retry', 'cancel'],
    automatic: false,
  },
  'device.storage_insufficient': {
    title: { ja: '端末の空き容量が足りません', en: 'The device does not have enough free storage' },
    remedy: {
      ja: 'アプリのダウンロードと展開に必要な空き容量が端末にありません。端末はこのとき特定のエラーコードを返さないため、端末の空き容量とアプリのサイズを比べて判断しています（目安として、アプリのサイズの2倍以上の空きが必要です）。使っていないアプリや写真・動画などを削除して空きを増やし、「端末 → 情報を更新」で空き容量を確かめてから（API: POST /api/v1/devices/:id/refresh）、「ジョブ → 再実行」を押してください（POST /api/v1/jobs/:id/retry）。',
      en: "The device lacks the free space needed to download and unpack the app. The device reports no specific error code for this, so haishin compares the device's available capacity with the app's size (as a rule of thumb, twice the app's size must be free). Delete unused apps, photos or videos, check the free space with Devices → Refresh information (API: POST /api/v1/devices/:id/refresh), then press Jobs → Retry (POST /api/v1/jobs/:id/retry).",
    },
    actions: ['refresh_device_info', 'retry', 'cancel'],
    automatic: false,
  },
  'policy.app_status_blocks': {
    title: {
      ja: 'アプリの利用を制限する設定により、アプリが使えない状態です',
      en: 'An app restriction policy blocks or hides the app',
    },
    remedy: {
      ja: '端末に適用されている制限（許可したアプリだけを使える設定、禁止アプリの一覧、アプリのインストールの禁止、App Store の無効化など）によって、このアプリのインストールまたは表示が妨げられています。この場合、アプリのアイコンはホーム画面に表示されません。端末に配布している構成プロファイル（制限）やグループのアプリポリシーで、このアプリのバンドルIDを許可リストに加えるか、禁止リストから外してください。変更後は「端末 → 情報を更新」で、適用中の制限を確かめられます（API: POST /api/v1/devices/:id/refresh）。',
      en: "A restriction in force on the device (only allowed apps may run, a list of blocked apps, app installation turned off, the App Store disabled, …) prevents this app from being installed or shown; its icon does not appear on the Home Screen. In the configuration profile (restrictions) sent to the device, or in the group's app policy, add the app's bundle ID to the allowed list or remove it from the blocked list. Devices → Refresh information then shows the restrictions in force (API: POST /api/v1/devices/:id/refresh).",
    },
    actions: ['refresh_device_info'],
    automatic: false,
  },
  'restriction.content_rating': {
    title: {
      ja: 'App の年齢制限によりアプリが表示されていません',
      en: 'The app content-rating restriction hides the app',
    },
    remedy: {
      ja: '端末の制限で許可されている App の年齢区分（ratingApps）が、このアプリの年齢区分より低いため、アプリはインストールされていてもホーム画面に表示されません。端末に配布している構成プロファイル（制限）で、App の年齢制限をこのアプリの区分以上か「すべて許可」に変えてください。変更後は「端末 → 情報を更新」で確かめてください（API: POST /api/v1/devices/:id/refresh）。',
      en: "The app age rating allowed by the device's restrictions (ratingApps) is lower than this app's rating, so the app does not appear on the Home Screen even when it is installed. In the configuration profile (restrictions) sent to the device, raise the allowed app rating to at least the app's rating, or allow all apps. Check with Devices → Refresh information afterwards (API: POST /api/v1/devices/:id/refresh).",
    },
    actions: ['refresh_device_info'],
    automatic: false,
  },
  'shared_ipad.users_logged_in': {
    title: { ja: '共有iPadにユーザがログインしています', en: 'Users are logged in on the Shared iPad' },
    remedy: {
      ja: '共有iPadでは、誰もログインしていないときにしかアプリをインストールできません。ユーザがログインしている間、端末はインストールを後回しにします（NotNow）。「ジョブ → ユーザをログアウト」でログイン中のユーザをログアウトさせるか（API: POST /api/v1/jobs/:id/remediate、本文 {"action": "logout_users"}）、利用者にログアウトをお願いしてください。授業や業務で使っていない時間帯に「ジョブ → 再実行」を押すこともできます（POST /api/v1/jobs/:id/retry）。',
      en: 'A Shared iPad installs apps only while nobody is logged in; while a user is, the device puts the install off (NotNow). Log the users out with Jobs → Log out users (API: POST /api/v1/jobs/:id/remediate with {"action": "logout_users"}) or ask them to log out, or press Jobs → Retry at a time when the iPad is not in use (POST /api/v1/jobs/:id/retry).',
    },
    actions: ['logout_users', 'retry', 'cancel'],
    automatic: false,
  },
  'device.restored_from_backup': {
    title: {
      ja: 'バックアップから復元した端末で、アプリが雲のアイコンになっています',
      en: 'Apps restored from a backup show a cloud icon',
    },
    remedy: {
      ja: '別の端末のバックアップを復元すると、管理対象のアプリはアイコンだけが戻り（雲のアイコン）、アプリ本体はダウンロードされません（ManagedButUninstalled）。端末でそのアプリのアイコンを長押しして削除してから、「ジョブ → 再実行」で配信し直してください（API: POST /api/v1/jobs/:id/retry）。',
      en: 'When a backup of another device is restored, managed apps come back as icons only (with a cloud symbol) and the apps themselves are not downloaded (ManagedButUninstalled). Delete the app on the device (touch and hold its icon), then distribute again with Jobs → Retry (API: POST /api/v1/jobs/:id/retry).',
    },
    actions: ['retry', 'cancel'],
    automatic: false,
  },
  'device.error_unknown': {
    title: { ja: 'haishin の一覧にない端末エラーです', en: 'A device error haishin does not know' },
    remedy: {
      ja: '端末が、haishin の原因一覧にないエラーを返しました。端末が返したエラー（ErrorChain）はそのまま根拠欄にあります。次の順に試してください。(1)「ジョブ → キャンセル」のあと、端末の電源と Wi-Fi をいったんオフにしてからオンにし、「ジョブ → 再実行」を押す（API: POST /api/v1/jobs/:id/cancel、POST /api/v1/jobs/:id/retry）。(2)「ジョブ → 回収して再割り当て」でライセンスを割り当て直してから再実行する（POST /api/v1/jobs/:id/remediate、本文 {"action": "reclaim_and_reassign"}）。解決しない場合は、サポートバンドル（GET /api/v1/jobs/:id/support-bundle）を添えてお問い合わせください。',
      en: 'The device returned an error that is not in haishin\'s list of causes; its raw ErrorChain is in the evidence. Try, in this order: (1) Jobs → Cancel, switch the device and its Wi-Fi off and on again, then Jobs → Retry (API: POST /api/v1/jobs/:id/cancel, POST /api/v1/jobs/:id/retry); (2) Jobs → Reclaim and reassign the licence, then retry (POST /api/v1/jobs/:id/remediate with {"action": "reclaim_and_reassign"}). If that does not help, contact support with the support bundle (GET /api/v1/jobs/:id/support-bundle).',
    },
    actions: ['cancel', 'retry', 'reclaim_and_reassign'],
    automatic: false,
  },
  'app.update_not_applied': {
    title: {
      ja: '端末にアプリのアップデートが適用されていません',
      en: 'The device did not apply the app update',
    },
    remedy: {
      ja: '端末はアップデートの指示を受け取りましたが、アプリは管理されたまま古いバージョンのままです（根拠欄に期待したバージョンと端末が報告したバージョンがあります）。利用者がアップデートを断った（UpdateRejected）、アプリが使用中だった、空き容量が足りない、新しいバージョンが端末の iOS / iPadOS に対応していない、などが考えられます。アプリを閉じて端末を Wi-Fi と電源につなぎ、空き容量と OS のバージョンを確認してから「ジョブ → 再実行」を押してください（API: POST /api/v1/jobs/:id/retry）。OS が古い場合は先に端末をアップデートしてください。端末の情報は「端末 → 情報を更新」で取り直せます（POST /api/v1/devices/:id/refresh）。アプリごとの古いバージョンの台数は「アプリ」画面で確認できます（GET /api/v1/apps）。',
      en: 'The device took the update command, but the app is still managed at an older version (the evidence shows the version expected and the one the device reported). The user may have declined the update (UpdateRejected), the app may have been in use, storage may be short, or the new version may not support the device’s iOS / iPadOS. Close the app, connect the device to Wi-Fi and power, check its free storage and OS version, then press Jobs → Retry (API: POST /api/v1/jobs/:id/retry). If the OS is too old, update the device first. Devices → Refresh information reads the device facts again (POST /api/v1/devices/:id/refresh). The Apps page shows how many devices still run an older version of each app (GET /api/v1/apps).',
    },
    actions: ['refresh_device_info', 'retry', 'cancel'],
    automatic: false,
  },
  'device.identity_expired': {
    title: {
      ja: '端末の識別証明書（デバイスID）の有効期限が切れています',
      en: "The device's identity certificate has expired",
    },
    remedy: {
      ja: '端末は haishin が発行した識別証明書で通信に署名しますが、その証明書の有効期限が切れたため、haishin は端末からの接続をすべて拒否しています（根拠欄に期限と最後の接続日時があります）。haishin は期限の前（HAISHIN_IDENTITY_RENEW_BEFORE、既定30日前）に新しい証明書を自動で送りますが、この端末はその期間ずっとオフラインだったか、更新を受け付けませんでした。端末からは元に戻せないため、端末の「設定 → 一般 → VPNとデバイス管理」で haishin のプロファイルを削除し、登録用リンクからもう一度登録してください（Automated Device Enrollment の端末は初期化して再登録）。端末番号とグループはそのまま引き継がれます。登録し直したら「ジョブ → 再実行」を押してください（API: POST /api/v1/jobs/:id/retry）。期限切れの台数は「サーバー」画面（GET /api/v1/status の deviceIdentities.expired）で確認できます。',
      en: "The device signs its messages with the identity certificate haishin issued it, and that certificate has expired, so haishin refuses everything the device sends (the evidence shows the expiry and its last contact). haishin sends a new identity before expiry by itself (HAISHIN_IDENTITY_RENEW_BEFORE, 30 days by default), but this device was offline for that whole time or did not accept the renewal. It cannot recover on its own: remove haishin's profile on the device (Settings → General → VPN & Device Management) and enroll it again from an enrollment link (a device from Automated Device Enrollment: erase it and let it enroll again). Its device number and group are kept. Then press Jobs → Retry (API: POST /api/v1/jobs/:id/retry). The Server page shows how many devices are in this state (GET /api/v1/status, deviceIdentities.expired).",
    },
    actions: ['retry', 'cancel'],
    automatic: false,
  },
};

export const CATALOGUE: Readonly<Record<CauseCode, CatalogueEntry>> = Object.freeze(
  Object.fromEntries(CAUSE_CODES.map((code) => [code, Object.freeze({ code, ...ENTRIES[code] })])) as Record<
    CauseCode,
    CatalogueEntry
  >,
);

export function isCauseCode(value: string): value is CauseCode {
  return (CAUSE_CODES as readonly string[]).includes(value);
}

/**
 * DESIGN §3 labels. `retry_waiting` is shown with its attempt count, so the table holds the bare
 * label and `jobStatusLabel` adds "(n)".
 */
export const JOB_STATUS_LABELS: Readonly<Record<JobStatus, Bilingual>> = {
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
};

/** The label as the console shows it: `リトライ待機中(3)` / `Waiting to retry (3)`. */
export function jobStatusLabel(status: JobStatus, retryCount?: number | null): Bilingual {
  const label = JOB_STATUS_LABELS[status];
  if (status !== 'retry_waiting' || retryCount === undefined || retryCount === null) return label;
  return { ja: `${label.ja}(${retryCount})`, en: `${label.en} (${retryCount})` };
}
