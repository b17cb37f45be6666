/** Every user-visible text exists in Japanese and English. */
export interface Bilingual {
  ja: string;
  en: string;
}

type Params = Record<string, string | number>;

/** Messages of the admin API's refusals, keyed by their stable error code. `{name}` is filled from params. */
export const API_MESSAGES = {
  'auth.required': {
    en: 'An admin token is required: send "Authorization: Bearer <token>".',
    ja: '管理者トークンが必要です。「Authorization: Bearer <トークン>」を送ってください。',
  },
  'auth.invalid': {
    en: 'The admin token is not valid.',
    ja: '管理者トークンが正しくありません。',
  },
  'request.invalid': {
    en: 'The request is not valid: {detail}',
    ja: 'リクエストの内容が正しくありません: {detail}',
  },
  'request.nul_character': {
    en: 'The request contains the character U+0000 (NUL) in its {where}, which haishin cannot store.',
    ja: 'リクエストの {where} に文字 U+0000 (NUL) が含まれています。haishin はこの文字を保存できません。',
  },

  'request.too_large': {
    en: 'The request body is larger than this route accepts ({limit} bytes).',
    ja: 'リクエストの本文が大きすぎます（このルートの上限は {limit} バイトです）。',
  },
  'request.rate_limited': {
    en: 'Too many requests from this address: try again in {seconds} s.',
    ja: 'このアドレスからのリクエストが多すぎます。{seconds} 秒後にもう一度試してください。',
  },
  'auth.rate_limited': {
    en: 'Too many wrong admin tokens from this address: try again in {seconds} s.',
    ja: 'このアドレスから正しくない管理者トークンが続いたため、受け付けを止めています。{seconds} 秒後にもう一度試してください。',
  },
  'auth.forbidden': {
    en: 'Your role ({role}) may not do this: it needs the "{permission}" permission.',
    ja: 'あなたの役割（{role}）ではこの操作はできません。「{permission}」の権限が必要です。',
  },
  'auth.whole_tree_only': {
    en: 'This concerns the whole server: only administrators whose scope is the root group may use it.',
    ja: 'この操作はサーバー全体にかかわるため、ルートグループを範囲とする管理者だけが使えます。',
  },
  'auth.scope_top': {
    en: 'Group {id} is the top of your scope: only an administrator above it may move or delete it.',
    ja: 'グループ {id} はあなたの管理範囲の最上位です。移動や削除はその上位の管理者だけができます。',
  },
  'admin.not_found': {
    en: 'Administrator {id} does not exist.',
    ja: '管理者 {id} は存在しません。',
  },
  'admin_token.not_found': {
    en: 'Admin token {id} does not exist.',
    ja: '管理者トークン {id} は存在しません。',
  },
  'enrollment_link.not_found': {
    en: 'Enrollment link {id} does not exist.',
    ja: '登録用リンク {id} は存在しません。',
  },
  'admin.role_above_yours': {
    en: 'You may give or change only the roles at or below yours ({role}).',
    ja: '付与・変更できるのは、あなたの役割（{role}）以下の役割だけです。',
  },
  'admin.last_owner': {
    en: 'This is the last enabled owner: make another owner first, or nobody could manage haishin.',
    ja: '有効なオーナーはこの管理者だけです。先に別のオーナーを作成してください（誰も haishin を管理できなくなります）。',
  },
  'admin.not_self': {
    en: 'You cannot change your own role, scope or state: ask another administrator.',
    ja: '自分自身の役割・範囲・状態は変更できません。別の管理者に依頼してください。',
  },
  'admin.owner_scope': {
    en: 'An owner acts on the whole tree: its scope is the root group.',
    ja: 'オーナーはツリー全体を管理するため、範囲はルートグループになります。',
  },
  'admin_token.expiry_invalid': {
    en: 'The expiry must be a future instant (expiresAt) or a duration such as 30d (expiresIn), not both.',
    ja: '有効期限には未来の日時（expiresAt）か、30d のような期間（expiresIn）のどちらか一方を指定してください。',
  },
  'group.has_admins': {
    en: 'Group {id} is the scope of {admins} administrator(s): give them another scope first.',
    ja: 'グループ {id} は {admins} 人の管理者の管理範囲です。先に別の範囲を設定してください。',
  },
  'route.not_found': {
    en: 'There is no {method} {url} in the haishin API.',
    ja: 'haishin API に {method} {url} はありません。',
  },
  'cursor.invalid': {
    en: 'The cursor is not valid; start again from the first page.',
    ja: 'カーソルが正しくありません。最初のページから取得し直してください。',
  },
  'group.not_found': {
    en: 'Group {id} does not exist.',
    ja: 'グループ {id} は存在しません。',
  },
  'group.parent_not_found': {
    en: 'The parent group {id} does not exist.',
    ja: '親グループ {id} は存在しません。',
  },
  'group.root_cannot_move': {
    en: 'The root group cannot be moved or get a parent.',
    ja: 'ルートグループは移動できません。',
  },
  'group.into_itself': {
    en: 'A group cannot be its own parent.',
    ja: 'グループを自分自身の下に移動することはできません。',
  },
  'group.into_descendant': {
    en: 'A group cannot be moved under one of its own subgroups: that would make a cycle.',
    ja: 'グループを自分の下位グループの下に移動することはできません（循環になります）。',
  },
  'group.root_cannot_delete': {
    en: 'The root group cannot be deleted.',
    ja: 'ルートグループは削除できません。',
  },
  'group.not_empty': {
    en: 'Group {id} still holds {devices} device(s), {groups} subgroup(s) and {tokens} VPP token(s): move or remove them first.',
    ja: 'グループ {id} には端末 {devices} 台、下位グループ {groups} 個、VPPトークン {tokens} 個があります。先に移動または削除してください。',
  },
  'device.number_taken': {
    en: 'Device number {number} is already used by another device.',
    ja: '端末番号 {number} は他の端末で使われています。',
  },
  'token.not_found': {
    en: 'VPP token {id} does not exist.',
    ja: 'VPPトークン {id} は存在しません。',
  },
  'token.file_invalid': {
    en: 'The file is not a usable VPP token (.vpptoken): {detail}',
    ja: 'このファイルは使用できるVPPトークン(.vpptoken)ではありません: {detail}',
  },
  'token.expired_file': {
    en: 'This VPP token expired on {date}. Download a new token from Apple Business Manager / Apple School Manager (Settings → Payments and Billing).',
    ja: 'このVPPトークンは {date} に期限切れになっています。Apple Business Manager / Apple School Manager（設定 → お支払いと請求）から新しいトークンをダウンロードしてください。',
  },
  'token.apple_refused': {
    en: 'Apple refused the token: {detail}',
    ja: 'Apple がトークンを受け付けませんでした: {detail}',
  },
  'token.other_mdm_claim': {
    en: 'The location "{location}" is managed by another MDM server ({other}). haishin will not take it over unless you ask explicitly (POST /api/v1/vpp-tokens/{id}/takeover).',
    ja: 'ロケーション「{location}」は別のMDMサーバー（{other}）が管理しています。明示的に引き継ぐ操作（POST /api/v1/vpp-tokens/{id}/takeover）をしない限り、haishin は引き継ぎません。',
  },
  'token.renew_other_location': {
    en: 'Renewal refused: the new token belongs to "{newLocation}", not to "{location}". Renew with a token of the same location.',
    ja: '更新できません: 新しいトークンのロケーションは「{newLocation}」で、「{location}」ではありません。同じロケーションのトークンで更新してください。',
  },
  'token.renew_not_later': {
    en: 'Renewal refused: the new token expires on {newDate}, which is not later than the current {date}.',
    ja: '更新できません: 新しいトークンの有効期限 {newDate} は現在の有効期限 {date} より後ではありません。',
  },
  'token.renew_other_mdm': {
    en: 'Renewal refused: the location is claimed by another MDM server ({other}). Take it over explicitly first.',
    ja: '更新できません: このロケーションは別のMDMサーバー（{other}）が管理しています。先に明示的に引き継いでください。',
  },
  'token.group_has_token_for_location': {
    en: 'A token for location "{location}" is already registered (token {id}). Renew that one instead.',
    ja: 'ロケーション「{location}」のトークンはすでに登録されています（トークン {id}）。そちらを更新してください。',
  },
  'share.share_not_descendant': {
    en: 'A token can be shared only to groups below the group it is registered to; {group} is not below {registered} (siblings and parents cannot receive it).',
    ja: 'トークンは登録先グループの下位グループにのみ共有できます。{group} は {registered} の下位グループではありません（兄弟グループや上位グループには共有できません）。',
  },
  'share.share_self': {
    en: 'The token is registered to {group} already; sharing it there is not needed.',
    ja: 'トークンはすでに {group} に登録されているため、共有は不要です。',
  },
  'share.share_already': {
    en: 'The token is already shared to {group}.',
    ja: 'トークンはすでに {group} に共有されています。',
  },
  'share.share_from_shared': {
    en: 'A shared token cannot be shared onward: only its registered group {registered} can share it.',
    ja: '共有されたトークンをさらに共有することはできません。共有できるのは登録先グループ {registered} だけです。',
  },
  'share.not_found': {
    en: 'The token is not shared to {group}.',
    ja: 'トークンは {group} に共有されていません。',
  },
  'autoassign.token_not_usable': {
    en: 'Token {id} is neither registered nor shared to group {group}, so it cannot auto-assign licences there. Share it first.',
    ja: 'トークン {id} はグループ {group} に登録も共有もされていないため、自動割り当てに使えません。先に共有してください。',
  },
  'license.asset_not_found': {
    en: 'App {adamId} is not among the assets of token {id}; sync the token or check the Adam ID.',
    ja: 'アプリ {adamId} はトークン {id} の資産にありません。トークンを同期するか Adam ID を確認してください。',
  },
  'license.apple_error': {
    en: 'Apple refused the licence change ({kind}, error {errorNumber}): {message}',
    ja: 'Apple がライセンスの変更を拒否しました（{kind}、エラー {errorNumber}）: {message}',
  },
  'device.deactivated': {
    en: 'Device {id} is deactivated: no commands are sent to it.',
    ja: '端末 {id} は無効化されています。コマンドは送信されません。',
  },
  'app.not_found': {
    en: 'App {adamId} is not among the apps of haishin’s VPP tokens; sync the tokens or check the Adam ID.',
    ja: 'アプリ {adamId} は haishin の VPPトークンのアプリにありません。トークンを同期するか Adam ID を確認してください。',
  },
  'app.version_unknown': {
    en: 'haishin does not know the newest version of app {adamId} yet: check for updates first (POST /api/v1/apps/check).',
    ja: 'アプリ {adamId} の最新バージョンがまだ分かりません。先にアップデートを確認してください（POST /api/v1/apps/check）。',
  },
  'app.lookup_failed': {
    en: 'The App Store look-up did not answer, so no versions were checked: {detail}. Try again later.',
    ja: 'App Store の照会が応答しなかったため、バージョンを確認できませんでした: {detail}。しばらくしてからやり直してください。',
  },
  'app.bundle_unknown': {
    en: 'haishin does not know the bundle id of app {adamId} on this device (no licence or metadata): it cannot ask the device to remove it.',
    ja: 'この端末のアプリ {adamId} のバンドルIDが分からないため（ライセンスまたはアプリ情報がありません）、削除を指示できません。',
  },
  'job.not_found': {
    en: 'Job {id} does not exist.',
    ja: 'ジョブ {id} は存在しません。',
  },
  'distribution.not_found': {
    en: 'Distribution {id} does not exist.',
    ja: '配信 {id} は存在しません。',
  },
  'device.not_found': {
    en: 'Device {id} does not exist.',
    ja: '端末 {id} は存在しません。',
  },
  'remediate.unknown_action': {
    en: 'There is no remedy action "{action}". Known actions: {known}.',
    ja: '対処「{action}」はありません。使える対処: {known}',
  },
  'remediate.not_retryable': {
    en: 'Job {id} is {status}: only a job that ended without success can be retried or reassigned. Cancel a job that is still running first (POST /api/v1/jobs/{id}/cancel).',
    ja: 'ジョブ {id} の状態は {status} です。再実行や再割り当てができるのは、成功せずに終了したジョブだけです。実行中のジョブは先にキャンセルしてください（POST /api/v1/jobs/{id}/cancel）。',
  },
  'remediate.not_cancellable': {
    en: 'Job {id} has already finished ({status}): there is nothing to cancel.',
    ja: 'ジョブ {id} はすでに終了しています（{status}）。キャンセルするものはありません。',
  },
  'remediate.uninstall_job': {
    en: 'Job {id} removes an app: licence actions apply only to installs.',
    ja: 'ジョブ {id} はアプリの削除です。ライセンスの操作はインストールにだけ使えます。',
  },
  'remediate.no_serial': {
    en: 'Device {id} has no serial number, so no device licence can be assigned to it.',
    ja: '端末 {id} にはシリアル番号がないため、端末ライセンスを割り当てられません。',
  },
  'remediate.no_licence_to_reclaim': {
    en: 'Serial {serial} holds no licence of app {adamId} from this token (licence state: {state}). Use assign_license or retry instead.',
    ja: 'シリアル番号 {serial} には、このトークンのアプリ {adamId} のライセンスが割り当てられていません（ライセンスの状態: {state}）。代わりに assign_license または retry を使ってください。',
  },
  'remediate.licence_already_assigned': {
    en: 'Serial {serial} already holds a licence of app {adamId} (state: {state}). Use retry, or reclaim_and_reassign to assign it afresh.',
    ja: 'シリアル番号 {serial} にはアプリ {adamId} のライセンスがすでにあります（状態: {state}）。retry を使うか、割り当て直す場合は reclaim_and_reassign を使ってください。',
  },
  'remediate.manual_reassign': {
    en: 'Job {id} uses manually assigned licences: reclaim (POST /api/v1/licenses/reclaim), assign again once Apple confirms (POST /api/v1/licenses/assign), then retry the job.',
    ja: 'ジョブ {id} は手動で割り当てたライセンスを使います。ライセンスを回収し（POST /api/v1/licenses/reclaim）、Apple の確認後に割り当て直してから（POST /api/v1/licenses/assign）、ジョブを再実行してください。',
  },
  'remediate.token_not_usable': {
    en: 'Token {token} is neither registered nor shared to group {group} of the device, so it cannot give the device a licence. Share it first (action share_token).',
    ja: 'トークン {token} は端末のグループ {group} に登録も共有もされていないため、この端末にライセンスを割り当てられません。先に共有してください（対処 share_token）。',
  },
} satisfies Record<string, Bilingual>;

export type ApiMessageCode = keyof typeof API_MESSAGES;

export function fill(text: string, params: Params): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

export function apiMessage(code: ApiMessageCode, params: Params = {}): Bilingual {
  const m = API_MESSAGES[code];
  return { ja: fill(m.ja, params), en: fill(m.en, params) };
}
