import { Option } from 'commander';
import type { Command } from 'commander';
import { chooseLang } from '../output.ts';
import type { Lang } from '../output.ts';
import type { Ctx } from './common.ts';
import type { DistributeOptions } from './distribute.ts';

/**
 * The admin commands over the REST API. Only their shapes live here; each one imports its code
 * when it runs, so `haishin --help` and `haishin serve` do not pay for them.
 *
 * Global options go before the sub-command (`haishin --json --token T jobs ls`) or after it
 * (`haishin jobs ls --json`). Where `--token` names a VPP token (`apps ls`, `licenses`,
 * `distribute`), the admin token after the sub-command is `--admin-token` (or HAISHIN_TOKEN).
 */
export function registerAdminCommands(program: Command, lang: Lang): void {
  const d = (ja: string, en: string) => (lang === 'ja' ? ja : en);

  program
    .option(
      '--url <url>',
      d(
        'haishin サーバーの URL（HAISHIN_URL、既定 http://127.0.0.1:8080）',
        'haishin server URL (HAISHIN_URL, default http://127.0.0.1:8080)',
      ),
    )
    .option('--token <token>', d('管理者トークン（HAISHIN_TOKEN）', 'admin token (HAISHIN_TOKEN)'))
    .option('--json', d('API の JSON をそのまま出力（スクリプト用）', "print the API's JSON (for scripts)"))
    .addOption(
      new Option('--lang <lang>', d('表示言語（既定は LANG から）', 'language (default from LANG)')).choices([
        'ja',
        'en',
      ]),
    )
    .addHelpText('after', exitCodeHelp(lang));

  type Impl = (ctx: Ctx, args: unknown[], opts: Record<string, unknown>) => Promise<void>;

  /** Adds the global options to a leaf command and runs `impl` with the API client it names. */
  const act = (cmd: Command, impl: Impl, o: { vppToken?: boolean } = {}) => {
    cmd
      .option('--url <url>', d('サーバーの URL', 'server URL'))
      .option('--admin-token <token>', d('管理者トークン', 'admin token'));
    if (!o.vppToken) cmd.option('--token <token>', d('管理者トークン', 'admin token'));
    cmd
      .option('--json', d('API の JSON を出力', "print the API's JSON"))
      .addOption(new Option('--lang <lang>', d('表示言語', 'language')).choices(['ja', 'en']));
    cmd.action(async (...all: unknown[]) => {
      const command = all[all.length - 1] as Command;
      const local = command.opts<Record<string, unknown>>();
      const global = program.opts<Record<string, unknown>>();
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const chosen = chooseLang(str(local.lang) ?? str(global.lang));
      const { ApiClient, CliError, DEFAULT_URL } = await import('../client.ts');
      try {
        const api = new ApiClient({
          url: str(local.url) ?? str(global.url) ?? process.env.HAISHIN_URL ?? DEFAULT_URL,
          token:
            str(local.adminToken) ??
            (o.vppToken ? undefined : str(local.token)) ??
            str(global.token) ??
            (process.env.HAISHIN_TOKEN || undefined),
          lang: chosen,
        });
        const ctx: Ctx = {
          api,
          lang: chosen,
          json: local.json === true || global.json === true,
          out: (text) => process.stdout.write(`${text}\n`),
          t: (ja, en) => (chosen === 'ja' ? ja : en),
        };
        await impl(ctx, command.processedArgs as unknown[], local);
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        process.stderr.write(`${err.line(chosen)}\n`);
        process.exitCode = err.exitCode;
      }
    });
    return cmd;
  };

  const s = (v: unknown) => v as string;
  const groups = program
    .command('groups')
    .description(d('グループ（学校・クラスなどの階層）', 'groups (the tree of schools, classes, …)'));
  act(groups.command('ls').description(d('グループの一覧', 'list groups')), async (ctx) =>
    (await import('./groups.ts')).groupsLs(ctx),
  );
  act(
    groups
      .command('add')
      .description(d('グループを作成', 'create a group'))
      .argument('<name>', d('名前', 'name'))
      .option('--parent <id>', d('親グループ（既定はルート）', 'parent group (default: the root)')),
    async (ctx, [name], o) => (await import('./groups.ts')).groupsAdd(ctx, s(name), o as { parent?: string }),
  );
  act(
    groups
      .command('mv')
      .description(
        d('グループを別の親の下へ移動、または名前を変更', 'move a group under another parent, or rename it'),
      )
      .argument('<id>', d('グループID', 'group id'))
      .option('--parent <id>', d('新しい親グループ', 'new parent group'))
      .option('--name <name>', d('新しい名前', 'new name')),
    async (ctx, [id], o) =>
      (await import('./groups.ts')).groupsMv(ctx, s(id), o as { parent?: string; name?: string }),
  );

  act(
    groups
      .command('auto-assign')
      .description(
        d(
          'グループの自動割り当てトークン（配信時にライセンスを割り当てる VPP トークン、下位グループが継承）を設定・解除',
          "set or clear a group's auto-assign token (the VPP token licences are assigned from; subgroups inherit it)",
        ),
      )
      .argument('<id>', d('グループID', 'group id'))
      .option('--token <tokenId>', d('VPP トークンID', 'VPP token id'))
      .option('--none', d('自動割り当てを解除', 'clear the setting')),
    async (ctx, [id], o) =>
      (await import('./groups.ts')).groupsAutoAssign(ctx, s(id), o as { token?: string; none?: boolean }),
    { vppToken: true },
  );

  act(
    groups
      .command('keep-updated')
      .description(
        d(
          '「アプリを最新に保つ」: on で新しいバージョンを自動配信、off で対象外、inherit で上位グループに従う',
          '"keep apps up to date": on distributes new versions by itself, off opts out, inherit follows the parent groups',
        ),
      )
      .argument('<id>', d('グループID', 'group id'))
      .argument('<setting>', 'on | off | inherit'),
    async (ctx, [id, setting]) =>
      (await import('./app-updates.ts')).groupsKeepUpdated(ctx, s(id), s(setting)),
  );

  const links = program
    .command('enrollment-links')
    .description(
      d(
        'グループの登録用リンク（端末の登録に必要な秘密を含むURL、期限・回数の制限、無効化）',
        "a group's enrollment links (the URL with the secret a device needs to enroll; expiry, use count, revocation)",
      ),
    );
  act(
    links
      .command('ls')
      .description(
        d('登録用リンクの一覧（秘密は表示されません）', 'list enrollment links (without their secrets)'),
      )
      .option('--group <id>', d('グループで絞り込む', 'only this group')),
    async (ctx, _args, o) => (await import('./enrollment-links.ts')).linksLs(ctx, o as { group?: string }),
  );
  act(
    links
      .command('create')
      .description(
        d(
          '登録用リンクを作成し、URL と QR コードを表示（表示は一度だけ）',
          'create an enrollment link and show its URL and QR code (shown this once)',
        ),
      )
      .requiredOption('--group <id>', d('登録先のグループ', 'the group devices enroll into'))
      .option('--label <text>', d('ラベル（例: 1年1組 4月）', 'a label (e.g. "Class 1-1, April")'))
      .option('--expires-in <duration>', d('有効期間（例 7d、12h）', 'valid for (e.g. 7d, 12h)'))
      .option('--expires-at <time>', d('有効期限（ISO 8601）', 'valid until (ISO 8601)'))
      .option('--max-uses <n>', d('利用できる回数の上限', 'how many enrollments it allows'))
      .option('--no-qr', d('QR コードを表示しない', 'do not print the QR code')),
    async (ctx, _args, o) =>
      (await import('./enrollment-links.ts')).linksCreate(
        ctx,
        o as {
          group: string;
          label?: string;
          expiresIn?: string;
          expiresAt?: string;
          maxUses?: string;
          qr?: boolean;
        },
      ),
  );
  act(
    links
      .command('revoke')
      .description(
        d(
          '登録用リンクを無効化（登録済みの端末はそのまま）',
          'revoke an enrollment link (devices already enrolled stay)',
        ),
      )
      .argument('<id>', d('リンクID', 'link id')),
    async (ctx, [id]) => (await import('./enrollment-links.ts')).linksRevoke(ctx, s(id)),
  );

  const admins = program
    .command('admins')
    .description(
      d(
        '管理者（役割: owner・admin・operator・viewer、範囲: グループ以下）と API トークン',
        'administrators (role: owner, admin, operator, viewer; scope: a group and below) and their API tokens',
      ),
    );
  act(
    admins.command('me').description(d('このトークンの管理者・権限・範囲', 'who this token acts for')),
    async (ctx) => (await import('./admins.ts')).adminsMe(ctx),
  );
  act(
    admins
      .command('ls')
      .description(d('管理者の一覧（自分の範囲内）', 'list administrators (inside your scope)')),
    async (ctx) => (await import('./admins.ts')).adminsLs(ctx),
  );
  act(
    admins
      .command('create')
      .description(
        d(
          '管理者を作成し、最初の API トークンを表示（表示は一度だけ）',
          'create an administrator and show a first API token (shown this once)',
        ),
      )
      .argument('<name>', d('名前', 'name'))
      .requiredOption('--role <role>', 'owner | admin | operator | viewer')
      .option(
        '--scope <groupId>',
        d('範囲のグループ（既定は自分の範囲）', 'the scope group (default: yours)'),
      )
      .option(
        '--token-name <name>',
        d('トークンの名前（既定は管理者名）', "the token's name (default: the name)"),
      )
      .option('--expires-in <duration>', d('トークンの有効期間（例 90d）', "the token's lifetime (e.g. 90d)"))
      .option('--without-token', d('トークンを作らない', 'make no token')),
    async (ctx, [name], o) =>
      (await import('./admins.ts')).adminsCreate(
        ctx,
        s(name),
        o as { role: string; scope?: string; tokenName?: string; expiresIn?: string; withoutToken?: boolean },
      ),
  );
  act(
    admins
      .command('set')
      .description(
        d(
          '管理者の役割・範囲・名前を変更、無効化・有効化',
          "change an administrator's role, scope or name; disable or enable",
        ),
      )
      .argument('<id>', d('管理者ID', 'administrator id'))
      .option('--role <role>', 'owner | admin | operator | viewer')
      .option('--scope <groupId>', d('範囲のグループ', 'the scope group'))
      .option('--name <name>', d('新しい名前', 'new name'))
      .option(
        '--disable',
        d('無効化（トークンはすべて拒否されます）', 'disable (all their tokens are refused)'),
      )
      .option('--enable', d('有効化', 'enable')),
    async (ctx, [id], o) =>
      (await import('./admins.ts')).adminsSet(
        ctx,
        s(id),
        o as { role?: string; scope?: string; name?: string; disable?: boolean; enable?: boolean },
      ),
  );
  act(
    admins
      .command('disable')
      .description(
        d(
          '管理者を無効化（トークンはすべて拒否されます）',
          'disable an administrator (all their tokens are refused)',
        ),
      )
      .argument('<id>', d('管理者ID', 'administrator id')),
    async (ctx, [id]) => (await import('./admins.ts')).adminsSet(ctx, s(id), { disable: true }),
  );
  const adminTokens = admins
    .command('tokens')
    .description(
      d(
        '管理者の API トークン（名前付き・期限・失効）',
        "an administrator's API tokens (named, expiring, revocable)",
      ),
    );
  act(
    adminTokens
      .command('ls')
      .description(d('トークンの一覧（秘密は表示されません）', 'list tokens (never their secrets)'))
      .argument('<adminId>', d('管理者ID', 'administrator id')),
    async (ctx, [adminId]) => (await import('./admins.ts')).tokensLs(ctx, s(adminId)),
  );
  act(
    adminTokens
      .command('create')
      .description(d('トークンを作成して表示（表示は一度だけ）', 'create a token and show it (this once)'))
      .argument('<adminId>', d('管理者ID', 'administrator id'))
      .requiredOption(
        '--name <name>',
        d('トークンの名前（例: 職員室PC）', "the token's name (e.g. staff-room PC)"),
      )
      .option('--expires-in <duration>', d('有効期間（例 90d）', 'lifetime (e.g. 90d)')),
    async (ctx, [adminId], o) =>
      (await import('./admins.ts')).tokensCreate(ctx, s(adminId), o as { name: string; expiresIn?: string }),
  );
  act(
    adminTokens
      .command('revoke')
      .description(d('トークンを失効（以後拒否されます）', 'revoke a token (refused from now on)'))
      .argument('<adminId>', d('管理者ID', 'administrator id'))
      .argument('<tokenId>', d('トークンID', 'token id')),
    async (ctx, [adminId, tokenId]) =>
      (await import('./admins.ts')).tokensRevoke(ctx, s(adminId), s(tokenId)),
  );

  const pushCert = program
    .command('push-cert')
    .description(
      d('MDM プッシュ証明書（作成・更新・置き換え）', 'the MDM push certificate (request, renew, replace)'),
    );
  pushCert
    .command('csr')
    .description(
      d(
        'プッシュ証明書の秘密鍵と署名要求（CSR）を作成（サーバーに接続しません）',
        'make the private key and the signing request (CSR) for the push certificate (no server needed)',
      ),
    )
    .option('--dir <dir>', d('書き出すフォルダ', 'folder to write push.key and push.csr to'), '.')
    .option('--cn <name>', d('CSR の Common Name', "the CSR's common name"), 'haishin MDM push')
    .option('--org <name>', d('組織名', 'organisation name'))
    .option('--country <CC>', d('国コード（例 JP）', 'country code (e.g. JP)'))
    .option('--email <address>', d('連絡先メールアドレス', 'contact e-mail address'))
    .option('--force', d('既存の push.key を上書き', 'overwrite an existing push.key'))
    .action(
      async (o: {
        dir: string;
        cn: string;
        org?: string;
        country?: string;
        email?: string;
        force?: boolean;
      }) => {
        const { writePushCsr, csrNextSteps } = await import('../push-cert.ts');
        try {
          const files = writePushCsr({
            dir: o.dir,
            commonName: o.cn,
            ...(o.org !== undefined ? { organization: o.org } : {}),
            ...(o.country !== undefined ? { country: o.country } : {}),
            ...(o.email !== undefined ? { email: o.email } : {}),
            ...(o.force ? { force: true } : {}),
          });
          process.stdout.write(`${csrNextSteps(files, lang)}\n`);
        } catch (err) {
          process.stderr.write(`haishin: ${(err as Error).message}\n`);
          process.exitCode = 2;
        }
      },
    );
  act(
    pushCert.command('show').description(d('使用中のプッシュ証明書', 'the push certificate in use')),
    async (ctx) => (await import('./push-cert.ts')).pushCertShow(ctx),
  );
  act(
    pushCert
      .command('replace')
      .description(
        d(
          '更新したプッシュ証明書に置き換え（再起動不要。トピックが違う証明書は --force なしでは拒否）',
          'replace the push certificate with a renewed one, without a restart (another topic is refused without --force)',
        ),
      )
      .option('--cert <file>', d('証明書（PEM）', 'certificate (PEM)'))
      .option('--key <file>', d('秘密鍵（PEM）', 'private key (PEM)'))
      .option('--p12 <file>', d('証明書と鍵を含む .p12', 'a .p12 holding both'))
      .option('--password <password>', d('.p12 のパスワード', "the .p12's password"))
      .option(
        '--force',
        d(
          'トピックが違っても置き換える（すべての端末の再登録が必要）',
          'replace even with another topic (every device must enroll again)',
        ),
      ),
    async (ctx, _args, o) =>
      (await import('./push-cert.ts')).pushCertReplace(
        ctx,
        o as { cert?: string; key?: string; p12?: string; password?: string; force?: boolean },
      ),
  );

  const devices = program.command('devices').description(d('端末（iPad）', 'devices (iPads)'));
  act(
    devices
      .command('ls')
      .description(d('端末の一覧', 'list devices'))
      .option('--group <id>', d('グループで絞り込む', 'only this group'))
      .option('--include-subgroups', d('下位グループの端末も含める', 'with the devices of its subgroups'))
      .option('--status <status>', 'pending | enrolled | unenrolled | deactivated')
      .option('--serial <serial>', d('シリアル番号で絞り込む', 'only this serial number'))
      .option(
        '--identity-expired',
        d(
          '識別証明書が期限切れの端末のみ（再登録が必要）',
          'only devices whose identity expired (they must enroll again)',
        ),
      )
      .option('--limit <n>', d('表示する最大件数', 'at most this many')),
    async (ctx, _args, o) => (await import('./devices.ts')).devicesLs(ctx, o),
  );
  act(
    devices
      .command('show')
      .description(d('端末の詳細', 'one device in detail'))
      .argument('<id>', d('端末ID またはシリアル番号', 'device id or serial number')),
    async (ctx, [id]) => (await import('./devices.ts')).devicesShow(ctx, s(id)),
  );
  act(
    devices
      .command('move')
      .description(d('端末を別のグループへ移動', 'move a device to another group'))
      .argument('<id>', d('端末ID またはシリアル番号', 'device id or serial number'))
      .requiredOption('--group <id>', d('移動先グループ', 'target group')),
    async (ctx, [id], o) => (await import('./devices.ts')).devicesMove(ctx, s(id), o as { group: string }),
  );
  act(
    devices
      .command('deactivate')
      .description(
        d(
          '端末を無効化（ライセンスを回収し、以後コマンドを送らない）',
          'deactivate a device (its licences are reclaimed; no more commands)',
        ),
      )
      .argument('<id>', d('端末ID またはシリアル番号', 'device id or serial number')),
    async (ctx, [id]) => (await import('./devices.ts')).devicesDeactivate(ctx, s(id)),
  );

  const tokens = program
    .command('tokens')
    .description(d('VPPトークン（Apps and Books）', 'VPP tokens (Apps and Books)'));
  act(tokens.command('ls').description(d('VPPトークンの一覧', 'list VPP tokens')), async (ctx) =>
    (await import('./tokens.ts')).tokensLs(ctx),
  );
  act(
    tokens
      .command('add')
      .description(d('.vpptoken ファイルを登録', 'register a .vpptoken file'))
      .argument('<file>', d('.vpptoken ファイル', '.vpptoken file'))
      .requiredOption('--group <id>', d('登録先グループ', 'group to register it to')),
    async (ctx, [file], o) => (await import('./tokens.ts')).tokensAdd(ctx, s(file), o as { group: string }),
  );
  act(
    tokens
      .command('renew')
      .description(
        d(
          '新しい .vpptoken ファイルで更新（同じロケーション）',
          'renew with a new .vpptoken file (same location)',
        ),
      )
      .argument('<id>', d('トークンID', 'token id'))
      .argument('<file>', d('.vpptoken ファイル', '.vpptoken file')),
    async (ctx, [id, file]) => (await import('./tokens.ts')).tokensRenew(ctx, s(id), s(file)),
  );
  act(
    tokens
      .command('share')
      .description(d('下位グループへ共有', 'share to a group below the registered one'))
      .argument('<id>', d('トークンID', 'token id'))
      .requiredOption('--group <id>', d('共有先グループ', 'group to share to')),
    async (ctx, [id], o) => (await import('./tokens.ts')).tokensShare(ctx, s(id), o as { group: string }),
  );
  act(
    tokens
      .command('unshare')
      .description(
        d(
          '共有を解除（その共有で割り当てたライセンスは回収）',
          'remove a share (licences assigned through it are reclaimed)',
        ),
      )
      .argument('<id>', d('トークンID', 'token id'))
      .requiredOption('--group <id>', d('共有を解除するグループ', 'group to unshare')),
    async (ctx, [id], o) => (await import('./tokens.ts')).tokensUnshare(ctx, s(id), o as { group: string }),
  );
  act(
    tokens
      .command('sync')
      .description(d('Apple からアプリとライセンス数を同期', 'sync apps and licence counts from Apple'))
      .argument('<id>', d('トークンID', 'token id')),
    async (ctx, [id]) => (await import('./tokens.ts')).tokensSync(ctx, s(id)),
  );

  const apps = program.command('apps').description(d('購入済みアプリ', 'purchased apps'));
  act(
    apps
      .command('ls')
      .description(d('トークンのアプリとライセンス数', "a token's apps with licence counts"))
      .requiredOption('--token <id>', d('VPPトークンID', 'VPP token id')),
    async (ctx, _args, o) => (await import('./apps.ts')).appsLs(ctx, o as { token: string }),
    { vppToken: true },
  );
  act(
    apps
      .command('updates')
      .description(
        d(
          'アプリの最新バージョンと、古いバージョンの端末の台数',
          "the apps' newest versions and how many devices run an older one",
        ),
      ),
    async (ctx) => (await import('./app-updates.ts')).appsUpdates(ctx),
  );
  act(
    apps
      .command('check')
      .description(
        d(
          'App Store で新しいバージョンを今すぐ確認（「アプリを最新に保つ」グループには自動で配信）',
          'look for new versions in the App Store now (groups that keep apps up to date get them)',
        ),
      ),
    async (ctx) => (await import('./app-updates.ts')).appsCheck(ctx),
  );
  act(
    apps
      .command('update')
      .description(
        d(
          '古いバージョンの端末にアプリの最新バージョンを配信',
          "distribute an app's newest version to the devices that run an older one",
        ),
      )
      .argument('<adamId>', d('アプリの Adam ID', "the app's Adam ID"))
      .option(
        '--group <id...>',
        d('対象のグループ（既定: すべての端末）', 'target groups (default: every device)'),
      )
      .option('--include-subgroups', d('下位グループも含める', 'include subgroups'))
      .option('--device <id...>', d('対象の端末ID', 'target device ids')),
    async (ctx, [adamId], o) =>
      (await import('./app-updates.ts')).appsUpdate(
        ctx,
        s(adamId),
        o as { group?: string[]; includeSubgroups?: boolean; device?: string[] },
      ),
  );

  const licenses = program.command('licenses').description(d('端末ライセンス', 'device licences'));
  for (const action of ['assign', 'reclaim'] as const) {
    act(
      licenses
        .command(action)
        .description(
          action === 'assign'
            ? d('シリアル番号にライセンスを割り当て', 'assign licences to serial numbers')
            : d('シリアル番号からライセンスを回収', 'reclaim licences from serial numbers'),
        )
        .argument('<serial...>', d('シリアル番号', 'serial numbers'))
        .requiredOption('--token <id>', d('VPPトークンID', 'VPP token id'))
        .requiredOption('--app <adamId>', d('アプリの Adam ID', "the app's Adam ID")),
      async (ctx, [serials], o) =>
        (await import('./apps.ts')).licenses(
          ctx,
          action,
          serials as string[],
          o as { token: string; app: string },
        ),
      { vppToken: true },
    );
  }

  act(
    program
      .command('distribute')
      .description(
        d('アプリを配信し、完了まで進捗を表示', 'distribute apps and show the progress until done'),
      )
      .argument('<adamId...>', d('アプリの Adam ID', 'Adam IDs of the apps'))
      .requiredOption('--token <id>', d('VPPトークンID', 'VPP token id'))
      .option(
        '--group <id>',
        d('配信先グループ（複数指定可）', 'target group (repeatable)'),
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option('--include-subgroups', d('下位グループの端末にも配信', 'also the devices of subgroups'))
      .option('--device <id...>', d('配信先の端末ID', 'target device ids'))
      .option(
        '--manual',
        d(
          'ライセンスを自動で割り当てない（割り当て済みのみ）',
          'do not assign licences (already assigned only)',
        ),
      )
      .option('--at <time>', d('予約日時（ISO 8601）', 'scheduled time (ISO 8601)'))
      .option('--no-wait', d('作成したらすぐ終了', 'return once created'))
      .option('--uninstall', d('インストールではなく削除', 'remove instead of install'))
      .option(
        '--timeout <duration>',
        d('待つ時間の上限（例 30m）', 'give up waiting after (e.g. 30m)'),
        '30m',
      ),
    async (ctx, [adamIds], o) =>
      (await import('./distribute.ts')).distribute(
        ctx,
        adamIds as string[],
        o as unknown as DistributeOptions,
      ),
    { vppToken: true },
  );

  const jobs = program
    .command('jobs')
    .description(d('ジョブ（端末 × アプリ）', 'jobs (one device × one app)'));
  act(
    jobs
      .command('ls')
      .description(d('ジョブの一覧', 'list jobs'))
      .option(
        '--status <status>',
        d('状態で絞り込む（例 device_error）', 'only this status (e.g. device_error)'),
      )
      .option('--distribution <id>', d('配信で絞り込む', 'only this distribution'))
      .option('--device <id>', d('端末で絞り込む', 'only this device'))
      .option('--limit <n>', d('表示する最大件数', 'at most this many')),
    async (ctx, _args, o) => (await import('./jobs.ts')).jobsLs(ctx, o),
  );
  act(
    jobs
      .command('show')
      .description(d('ジョブの詳細と状態の履歴', 'one job with its status history'))
      .argument('<id>', d('ジョブID', 'job id')),
    async (ctx, [id]) => (await import('./jobs.ts')).jobsShow(ctx, s(id)),
  );
  act(
    jobs
      .command('diagnose')
      .description(d('ジョブが成功しない原因と対処', 'why a job did not succeed, and what to do'))
      .argument('<id>', d('ジョブID', 'job id')),
    async (ctx, [id]) => (await import('./jobs.ts')).jobsDiagnose(ctx, s(id)),
  );
  for (const action of ['retry', 'cancel'] as const) {
    act(
      jobs
        .command(action)
        .description(
          action === 'retry'
            ? d('失敗したジョブを再実行', 'run a failed job again')
            : d('未完了のジョブをキャンセル', 'cancel an unfinished job'),
        )
        .argument('<id>', d('ジョブID', 'job id')),
      async (ctx, [id]) => (await import('./jobs.ts')).jobsAction(ctx, action, s(id)),
    );
  }

  act(
    program
      .command('explain')
      .description(
        d(
          '貼り付けたエラー文の原因と対処（省略時は標準入力）',
          'explain a pasted error text (stdin when omitted)',
        ),
      )
      .argument('[text...]', d('エラー文', 'error text')),
    async (ctx, [words]) => (await import('./jobs.ts')).explain(ctx, (words as string[] | undefined) ?? []),
  );
  act(
    program
      .command('support-bundle')
      .description(d('サポートに送る情報一式', 'everything support needs about a job'))
      .argument('<job>', d('ジョブID', 'job id'))
      .option('--text', d('テキスト形式', 'as text')),
    async (ctx, [job], o) => (await import('./jobs.ts')).supportBundle(ctx, s(job), o as { text?: boolean }),
  );

  const titles: Record<string, string> =
    lang === 'ja'
      ? {
          'Usage:': '使い方:',
          'Arguments:': '引数:',
          'Options:': 'オプション:',
          'Commands:': 'コマンド:',
          'Global Options:': '共通オプション:',
        }
      : {};
  for (const cmd of [program, ...descendants(program).filter((c) => !['serve', 'demo'].includes(c.name()))]) {
    cmd.configureHelp({ styleTitle: (str: string) => titles[str] ?? str });
    cmd.helpOption('-h, --help', d('ヘルプを表示', 'display help for command'));
    // Only where there are sub-commands: naming the help command turns it on.
    if (cmd.commands.length > 0)
      cmd.helpCommand('help [command]', d('コマンドのヘルプを表示', 'display help for command'));
  }
}

function descendants(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...descendants(c)]);
}

function exitCodeHelp(lang: Lang): string {
  return lang === 'ja'
    ? `
終了コード:
  0  成功
  1  サーバーが拒否した（4xx）、または Apple がライセンス変更の一部を拒否した
  2  使い方の誤り（不明なコマンド・オプション、引数の不足や形式の誤り、読めないファイル）
  3  サーバーに接続できない、応答がない、またはサーバーのエラー（5xx）
  4  distribute が終わり、失敗したジョブがある
  5  distribute が --timeout までに終わらなかった

環境変数: HAISHIN_URL、HAISHIN_TOKEN、LANG（ja で始まると日本語）`
    : `
Exit codes:
  0  done
  1  the server refused (4xx), or Apple refused part of a licence change
  2  usage error (unknown command or option, missing or malformed argument, unreadable file)
  3  cannot reach the server, no answer, or a server failure (5xx)
  4  distribute finished with failed jobs
  5  distribute did not finish within --timeout

Environment: HAISHIN_URL, HAISHIN_TOKEN, LANG (Japanese when it starts with "ja")`;
}
