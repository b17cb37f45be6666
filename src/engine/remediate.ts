import { VppError } from '../apple/vpp/errors.ts';
import type { Clock } from '../core/clock.ts';
import { isTerminal } from '../core/jobs.ts';
import type { JobStatus } from '../core/jobs.ts';
import type { Bilingual } from '../core/messages.ts';
import { Refusal } from '../core/refusal.ts';
import { checkShare, tokenUsableIn } from '../core/tokens.ts';
import { ACTIONS } from '../diagnosis/catalogue.ts';
import type { Action } from '../diagnosis/catalogue.ts';
import type { DeviceRow } from '../store/device-repo.ts';
import type { JobRow } from '../store/job-repo.ts';
import type { Store } from '../store/store.ts';
import type { VppTokenRow } from '../store/vpp-repo.ts';
import type { DistributionEngine } from './engine.ts';
import type { Commander } from './commander.ts';
import { enqueueRefresh, refreshCommands } from './refresh.ts';
import type { LicenseChange, VppTokens } from './vpp-tokens.ts';

export interface RemedyOutcome {
  action: Action;
  /** True when haishin did something; false when the answer only says where to do it. */
  done: boolean;
  detail: Bilingual;
  /** What was done, for the audit log. */
  record: Record<string, unknown>;
}

export interface RemedyContext {
  store: Store;
  clock: Clock;
  tokens: VppTokens;
  engine: DistributionEngine;
  commander: Commander;
}

export const isAction = (value: string): value is Action => (ACTIONS as readonly string[]).includes(value);

/**
 * `POST /jobs/:id/remediate {action}` — the one-click remedies of DESIGN §5. Actions haishin can
 * carry out are done here; the others (a new token file, a logout on the device, …) answer with
 * the exact place or API call, because doing them needs the administrator or the device's user.
 * An action that does not fit the job's state is a 409 that says what would.
 */
export async function remediate(o: RemedyContext, job: JobRow, action: string): Promise<RemedyOutcome> {
  if (!isAction(action))
    throw new Refusal(400, 'remediate.unknown_action', { action, known: ACTIONS.join(', ') });
  const device = await o.store.devices.get(job.device_id);
  const token = await o.store.vpp.getToken(job.token_id);
  const deviceName = device
    ? `#${device.device_number}${device.serial_number ? ` (${device.serial_number})` : ''}`
    : job.device_id;
  const retryCall = `POST /api/v1/jobs/${job.id}/retry`;

  switch (action) {
    case 'retry': {
      requireEndedWithoutSuccess(job);
      const moved = await o.engine.retryJob(job.id);
      return {
        action,
        done: true,
        detail: {
          ja: `ジョブを再実行しました（${moved?.attempt ?? job.attempt + 1} 回目の試行）。端末 ${deviceName} の順番が来ると進みます。`,
          en: `The job starts again (attempt ${moved?.attempt ?? job.attempt + 1}); it moves on when device ${deviceName} is free.`,
        },
        record: { attempt: moved?.attempt ?? null },
      };
    }
    case 'cancel': {
      if (isTerminal(job.status as JobStatus))
        throw new Refusal(409, 'remediate.not_cancellable', { id: job.id, status: job.status });
      await o.engine.cancelJob(job.id);
      return {
        action,
        done: true,
        detail: {
          ja: 'ジョブをキャンセルしました。端末に送信待ちだった指示も取り消しました。',
          en: 'The job is cancelled; its command, if still waiting for the device, was withdrawn.',
        },
        record: { from: job.status },
      };
    }
    case 'reclaim_and_reassign': {
      requireEndedWithoutSuccess(job);
      const serial = requireInstallWithSerial(job, device);
      if (job.license_mode === 'manual') throw new Refusal(409, 'remediate.manual_reassign', { id: job.id });
      const [licence] = await o.store.vpp.licenses({
        tokenId: job.token_id,
        adamId: job.adam_id,
        serialNumber: serial,
      });
      if (licence?.state !== 'assigned') {
        throw new Refusal(409, 'remediate.no_licence_to_reclaim', {
          serial,
          adamId: job.adam_id,
          state: licence?.state ?? 'none',
        });
      }
      const change = await appleCall(() => o.tokens.reclaim(job.token_id, job.adam_id, [serial]));
      const refused = refusalFor(change, serial);
      if (refused) {
        return {
          action,
          done: false,
          detail: {
            ja: `Apple がライセンスの回収を拒否しました（${refused}）。ジョブは再実行していません。`,
            en: `Apple refused to reclaim the licence (${refused}); the job was not retried.`,
          },
          record: { serial, refused },
        };
      }
      const moved = await o.engine.retryJob(job.id);
      return {
        action,
        done: true,
        detail: {
          ja: `シリアル番号 ${serial} のライセンスを回収し、ジョブを再実行しました（${moved?.attempt ?? '?'} 回目）。Apple が回収を確定すると、ライセンスが割り当て直されてインストールに進みます。`,
          en: `The licence of serial ${serial} is being reclaimed and the job starts again (attempt ${moved?.attempt ?? '?'}): once Apple confirms the reclaim, a licence is assigned afresh and the install proceeds.`,
        },
        record: { serial, eventIds: change.eventIds, attempt: moved?.attempt ?? null },
      };
    }
    case 'assign_license': {
      requireEndedWithoutSuccess(job);
      const serial = requireInstallWithSerial(job, device);
      const placement = {
        tokenId: job.token_id,
        registeredGroupId: token?.group_id ?? '',
        sharedGroupIds: token ? await o.store.vpp.sharesOf(token.id) : [],
      };
      if (!tokenUsableIn(placement, device!.group_id)) {
        throw new Refusal(409, 'remediate.token_not_usable', {
          token: job.token_id,
          group: device!.group_id,
        });
      }
      const [licence] = await o.store.vpp.licenses({
        tokenId: job.token_id,
        adamId: job.adam_id,
        serialNumber: serial,
      });
      if (licence?.state === 'assigned' || licence?.state === 'assigning') {
        throw new Refusal(409, 'remediate.licence_already_assigned', {
          serial,
          adamId: job.adam_id,
          state: licence.state,
        });
      }
      const change = await appleCall(() =>
        o.tokens.assign(job.token_id, job.adam_id, [serial], 'manual', device!.group_id),
      );
      const refused = refusalFor(change, serial);
      if (refused) {
        return {
          action,
          done: false,
          detail: {
            ja: `Apple がライセンスの割り当てを拒否しました（${refused}）。ジョブは再実行していません。`,
            en: `Apple refused to assign the licence (${refused}); the job was not retried.`,
          },
          record: { serial, refused },
        };
      }
      const moved = await o.engine.retryJob(job.id);
      return {
        action,
        done: true,
        detail: {
          ja: `シリアル番号 ${serial} にライセンスを手動で割り当て、ジョブを再実行しました（${moved?.attempt ?? '?'} 回目）。手動で割り当てたライセンスは自動では回収されません。`,
          en: `A licence was assigned manually to serial ${serial} and the job starts again (attempt ${moved?.attempt ?? '?'}). Manually assigned licences are not reclaimed automatically.`,
        },
        record: { serial, eventIds: change.eventIds, attempt: moved?.attempt ?? null },
      };
    }
    case 'refresh_device_info': {
      if (!device) throw new Refusal(404, 'device.not_found', { id: job.device_id });
      if (device.status === 'deactivated') throw new Refusal(409, 'device.deactivated', { id: device.id });
      // Queries pending from before count too: the device answers them once for both askers.
      const commands = await enqueueRefresh(o.commander, device, o.clock.now());
      const types = refreshCommands(device)
        .map((c) => c.requestType)
        .join(', ');
      const pushed = (await o.commander.pushOne(device.id)) === 'sent';
      return {
        action,
        done: true,
        detail: {
          ja: `端末 ${deviceName} に ${types} を問い合わせました${pushed ? '（PUSH送信済み）' : '（PUSHは送れませんでした。端末の次の接続で届きます）'}。回答が届いたら「診断」をもう一度開いてください。`,
          en: `Asked device ${deviceName} for ${types}${pushed ? ' (push sent)' : ' (no push could be sent; the device gets them when it next connects)'}. Open the diagnosis again once it has answered.`,
        },
        record: { commands: commands.map((c) => ({ uuid: c.uuid, requestType: c.requestType })), pushed },
      };
    }
    case 'sync_token': {
      const synced = await o.tokens.sync(job.token_id);
      return {
        action,
        done: true,
        detail: {
          ja: `VPPトークンを Apple と同期しました（アプリ・ブック ${synced.assets} 件）。ライセンス数が増えていれば、ジョブを再実行してください（${retryCall}）。`,
          en: `The VPP token was synced with Apple (${synced.assets} assets). If licences were added, retry the job (${retryCall}).`,
        },
        record: synced,
      };
    }
    default:
      return {
        action,
        done: false,
        detail: await pointer(o, action, job, device, token, retryCall),
        record: {},
      };
  }
}

/** Where the administrator does what haishin cannot do alone. */
async function pointer(
  o: RemedyContext,
  action: Exclude<
    Action,
    'retry' | 'cancel' | 'reclaim_and_reassign' | 'assign_license' | 'refresh_device_info' | 'sync_token'
  >,
  job: JobRow,
  device: DeviceRow | undefined,
  token: VppTokenRow | undefined,
  retryCall: string,
): Promise<Bilingual> {
  const tokenId = job.token_id;
  const tokenName = token
    ? `${token.org_name}${token.location_name ? ` / ${token.location_name}` : ''}`
    : tokenId;
  const groupId = device?.group_id ?? '<groupId>';
  const number = device ? `#${device.device_number}` : job.device_id;
  switch (action) {
    case 'renew_token':
    case 'migrate_token':
      return {
        ja: `Apple School Manager / Apple Business Manager の「設定 → お支払いと請求」から、同じロケーションの新しいトークン（.vpptoken）をダウンロードし、「VPPトークン → ${tokenName} → 更新」で登録してください（API: PUT /api/v1/vpp-tokens/${tokenId}、本文 {"sToken": "<.vpptoken ファイルの内容>"}）。そのあとジョブを再実行してください（${retryCall}）。`,
        en: `Download a new token (.vpptoken) for the same location from Apple School Manager / Apple Business Manager (Settings → Payments and Billing) and upload it under VPP tokens → ${tokenName} → Renew (API: PUT /api/v1/vpp-tokens/${tokenId} with {"sToken": "<contents of the .vpptoken file>"}). Then retry the job (${retryCall}).`,
      };
    case 'register_token':
      return {
        ja: `端末のグループ ${groupId} にVPPトークンを登録してください（「VPPトークン → 登録」、API: POST /api/v1/vpp-tokens、本文 {"groupId": "${groupId}", "sToken": "<.vpptoken ファイルの内容>"}）。上位グループのトークンを共有する方法もあります（share_token）。そのあと配信し直してください。`,
        en: `Register a VPP token to the device's group ${groupId} (VPP tokens → Register; API: POST /api/v1/vpp-tokens with {"groupId": "${groupId}", "sToken": "<contents of the .vpptoken file>"}), or share an ancestor's token to it (share_token). Then distribute again.`,
      };
    case 'share_token': {
      if (!token || !device) {
        return {
          ja: `「VPPトークン → 共有」で端末のグループを追加してください（API: POST /api/v1/vpp-tokens/${tokenId}/shares、本文 {"groupId": "<端末のグループID>"}）。`,
          en: `Add the device's group under VPP tokens → Share (API: POST /api/v1/vpp-tokens/${tokenId}/shares with {"groupId": "<the device's group id>"}).`,
        };
      }
      const groups = (await o.store.groups.all()).map((g) => ({ id: g.id, parentId: g.parent_id }));
      const placement = {
        tokenId,
        registeredGroupId: token.group_id,
        sharedGroupIds: await o.store.vpp.sharesOf(tokenId),
      };
      const refusal = checkShare(groups, placement, device.group_id);
      if (refusal === 'share_not_descendant') {
        return {
          ja: `トークン ${tokenName} は登録先グループ ${token.group_id} の下位グループにしか共有できませんが、端末のグループ ${device.group_id} はその下にありません。端末を ${token.group_id} の下位グループへ移動するか（PATCH /api/v1/devices/${device.id}、本文 {"groupId": "<移動先グループID>"}）、端末のグループにトークンを登録してから（POST /api/v1/vpp-tokens）、ジョブを再実行してください。`,
          en: `Token ${tokenName} can be shared only to groups below its registered group ${token.group_id}, and the device's group ${device.group_id} is not below it. Move the device into a group below ${token.group_id} (PATCH /api/v1/devices/${device.id} with {"groupId": "<target group id>"}) or register a token to the device's group (POST /api/v1/vpp-tokens), then retry the job.`,
        };
      }
      if (refusal === 'share_self' || refusal === 'share_already') {
        return {
          ja: `トークン ${tokenName} はすでに端末のグループ ${device.group_id} で使えます。ジョブを再実行してください（${retryCall}）。`,
          en: `Token ${tokenName} is already usable in the device's group ${device.group_id}. Retry the job (${retryCall}).`,
        };
      }
      return {
        ja: `「VPPトークン → ${tokenName} → 共有」で端末のグループ ${device.group_id} を追加してください（API: POST /api/v1/vpp-tokens/${tokenId}/shares、本文 {"groupId": "${device.group_id}"}）。そのあとジョブを再実行してください（${retryCall}）。`,
        en: `Add the device's group ${device.group_id} under VPP tokens → ${tokenName} → Share (API: POST /api/v1/vpp-tokens/${tokenId}/shares with {"groupId": "${device.group_id}"}). Then retry the job (${retryCall}).`,
      };
    }
    case 'takeover_token':
      return {
        ja: `このロケーションは別のMDMサーバーが管理しています。引き継ぐとそのサーバーはこのトークンを使えなくなるため、確認したうえで「VPPトークン → ${tokenName} → 引き継ぎ」を行ってください（API: POST /api/v1/vpp-tokens/${tokenId}/takeover）。そのあとジョブを再実行してください（${retryCall}）。`,
        en: `Another MDM server manages this location; taking it over stops that server from using the token, so confirm first, then use VPP tokens → ${tokenName} → Take over (API: POST /api/v1/vpp-tokens/${tokenId}/takeover). Then retry the job (${retryCall}).`,
      };
    case 'set_auto_assign':
      return {
        ja: `端末のグループ ${groupId} の自動割り当てトークンを、配信に使ったトークン ${tokenName} にしてください（「グループ → 自動割り当て」、API: PUT /api/v1/groups/${groupId}/auto-assign-token、本文 {"tokenId": "${tokenId}"}）。設定は下位グループにも引き継がれます。そのあとジョブを再実行してください（${retryCall}）。`,
        en: `Set the auto-assign token of the device's group ${groupId} to the distribution's token ${tokenName} (Groups → Auto-assign; API: PUT /api/v1/groups/${groupId}/auto-assign-token with {"tokenId": "${tokenId}"}); subgroups inherit it. Then retry the job (${retryCall}).`,
      };
    case 'logout_users':
      return {
        ja: `共有iPad ${number} はユーザーがログインしている間アプリをインストールできません。端末でログアウトしてください（コントロールセンター → ログアウト）。haishin は作業中のデータを失わせないよう、自動ではログアウトさせません。ログアウト後にジョブを再実行してください（${retryCall}）。`,
        en: `Shared iPad ${number} installs apps only while no user is logged in. Log the user out on the device (Control Center → Log Out); haishin does not log users out by itself, so nobody loses unsaved work. Then retry the job (${retryCall}).`,
      };
    case 'take_over_unmanaged_app':
      return {
        ja: `端末 ${number} には、ユーザーが自分でインストールした同じアプリ（管理対象外）があります。端末でそのアプリを削除してから（アイコンを長押し → Appを削除）、ジョブを再実行してください（${retryCall}）。再実行で管理対象のアプリとしてインストールされます。`,
        en: `Device ${number} has a copy of the app the user installed (not managed). Delete it on the device (touch and hold the icon → Remove App), then retry the job (${retryCall}); the retry installs the managed copy.`,
      };
  }
}

function requireEndedWithoutSuccess(job: JobRow): void {
  if (!isTerminal(job.status as JobStatus) || job.status === 'success') {
    throw new Refusal(409, 'remediate.not_retryable', { id: job.id, status: job.status });
  }
}

function requireInstallWithSerial(job: JobRow, device: DeviceRow | undefined): string {
  if (job.kind !== 'install') throw new Refusal(409, 'remediate.uninstall_job', { id: job.id });
  if (!device) throw new Refusal(404, 'device.not_found', { id: job.device_id });
  if (!device.serial_number) throw new Refusal(409, 'remediate.no_serial', { id: device.id });
  return device.serial_number;
}

/** Apple's synchronous refusal for this serial, as "kind errorNumber", or null. */
function refusalFor(change: LicenseChange, serial: string): string | null {
  const failure = change.failed.find((f) => f.serials.includes(serial));
  return failure ? `${failure.kind}${failure.errorNumber === null ? '' : ` ${failure.errorNumber}`}` : null;
}

/** An Apps and Books failure is Apple's answer, not a haishin bug: say it as one. */
async function appleCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof VppError) {
      throw new Refusal(502, 'license.apple_error', {
        kind: err.kind,
        errorNumber: err.errorNumber ?? '-',
        message: err.errorMessage ?? err.message,
      });
    }
    throw err;
  }
}
