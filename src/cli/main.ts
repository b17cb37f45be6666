import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from './commands/index.ts';
import { langFromArgv } from './output.ts';

/** The `haishin` command. Sub-commands load their code lazily so `haishin --help` stays fast. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('haishin')
    .description('haishin (配信) — Apple MDM for VPP app distribution that explains every failure')
    .exitOverride()
    // Global options are read before the sub-command only, so `demo --lang` and
    // `distribute --token <VPP token>` keep their own meaning after it.
    .enablePositionalOptions()
    // Usage errors are reported below as one line with their code.
    .configureOutput({ outputError: () => {} });

  program
    .command('serve')
    .description('run the production server, configured by HAISHIN_* environment variables')
    .action(async () => {
      const { serve } = await import('./serve.ts');
      await serve(process.env);
    });

  program
    .command('demo')
    .description('server + fake Apple services + a simulated fleet of iPads, on SQLite under ./data/demo')
    .option('--devices <n>', 'number of simulated iPads (10 to 100000)', '200')
    .option('--reset', 'start from an empty database')
    .option('--data <dir>', 'where the demo keeps its database', './data/demo')
    .option('--budget <duration>', 'stop by itself after this long (e.g. 90s); default: serve until Ctrl-C')
    .option('--lang <ja|en>', 'language of the summary (default from LANG)')
    .action(
      async (options: { devices: string; reset?: boolean; data: string; budget?: string; lang?: string }) => {
        const { runDemo } = await import('./demo.ts');
        await runDemo(options);
      },
    );

  program
    .command('fakes')
    .description('fake APNs, Apps and Books API and app look-up on 127.0.0.1, to run `haishin serve` against')
    .option(
      '--dir <dir>',
      'where the push certificate, CA, VPP token and fakes.env are written',
      './data/fakes',
    )
    .option(
      '--control <host:port>',
      'address of the control API (pushes for simulated devices, counters)',
      '127.0.0.1:0',
    )
    .option('--licences <n>', 'licences of each app on the VPP token written to the dir', '1000')
    .option('--apps <n>', 'more apps in the catalogue and on the VPP token, for benchmarks (0 to 999)', '0')
    .option('--duplicate-notifications', 'deliver every Apps and Books notification twice, as Apple may')
    .action(
      async (options: {
        dir: string;
        control: string;
        licences: string;
        apps: string;
        duplicateNotifications?: boolean;
      }) => {
        const { runFakes } = await import('./fakes.ts');
        await runFakes(options);
      },
    );

  program
    .command('fleet')
    .description(
      'simulated iPads that enroll in a `haishin serve` run against `haishin fakes`, and wake on its pushes',
    )
    .option(
      '--fakes <dir>',
      'the --dir of `haishin fakes` (its fakes.json names the control API)',
      './data/fakes',
    )
    .requiredOption(
      '--enroll <url>',
      'an enrollment link (`haishin enrollment-links create`: …/mdm/enroll?group=…&token=…)',
    )
    .option('--devices <n>', 'number of simulated iPads (1 to 10000)', '10')
    .option(
      '--download-time <duration>',
      'how long each app takes to download once an iPad accepted the install (e.g. 20s; default 0: at once)',
      '0',
    )
    .option('--download-concurrency <n>', 'downloads at once on one iPad (default: no limit)')
    .option(
      '--serial-prefix <text>',
      'serial numbers <text>000…1, <text>000…2, … instead of random ones (several fleets against one server)',
    )
    .action(
      async (options: {
        fakes: string;
        enroll: string;
        devices: string;
        downloadTime: string;
        downloadConcurrency?: string;
        serialPrefix?: string;
      }) => {
        const { runFleet } = await import('./fleet.ts');
        await runFleet(options);
      },
    );

  const ca = program
    .command('ca')
    .description(
      'the device CA in the database (decision 0023), configured like serve (HAISHIN_DB, HAISHIN_SECRET_KEY)',
    );
  ca.command('ls')
    .description('the CA that issues device identities and those that still verify devices')
    .action(async () => {
      const { listCas } = await import('./ca.ts');
      await listCas(process.env);
    });
  ca.command('rotate')
    .description(
      'a new CA issues identities from now on; the current one keeps verifying its devices until renewal moves them over (restart serve afterwards)',
    )
    .option('--years <n>', 'validity of the new CA in years', '10')
    .action(async (options: { years: string }) => {
      const { rotateCa } = await import('./ca.ts');
      await rotateCa(process.env, options);
    });

  program
    .command('secrets')
    .description('the secrets at rest in the database, configured like serve (HAISHIN_DB, HAISHIN_SECRET_KEY)')
    .command('rotate')
    .description(
      're-seal every secret at rest with a new HAISHIN_SECRET_KEY in one transaction (stop every serve process first)',
    )
    .option(
      '--new-key-file <file>',
      'the new key: read from FILE, or generated into FILE (mode 0600) when it does not exist; or set HAISHIN_NEW_SECRET_KEY',
    )
    .option('--force', 'rotate although a lease says a serve process is running (one that is gone)')
    .action(async (options: { newKeyFile?: string; force?: boolean }) => {
      const { rotateSecrets } = await import('./commands/secrets.ts');
      await rotateSecrets(process.env, options);
    });

  registerAdminCommands(program, langFromArgv(argv.slice(2)));

  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Exit code 2 for every usage error (commander says 1), so scripts can tell it from a refusal.
    if (err instanceof CommanderError && err.exitCode !== 0) {
      if (err.code !== 'commander.help' && err.code !== 'commander.helpDisplayed')
        console.error(usageLine(err, langFromArgv(argv.slice(2))));
      process.exitCode = 2;
      return;
    }
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    console.error(`haishin: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

/** `haishin: error: unknown option '--x' [commander.unknownOption]`, with a pointer to the help. */
function usageLine(err: CommanderError, lang: 'ja' | 'en'): string {
  const detail = err.message.replace(/^error:\s*/, '');
  return lang === 'ja'
    ? `haishin: 使い方が正しくありません: ${detail}（haishin --help を参照） [${err.code}]`
    : `haishin: ${detail} (see haishin --help) [${err.code}]`;
}
