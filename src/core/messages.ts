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
  'device.not_found': {
    en: 'Device {id} does not exist.',
    ja: '端末 {id} は存在しません。',
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
