import { Command, CommanderError } from 'commander';

/** The `haishin` command. Sub-commands load their code lazily so `haishin --help` stays fast. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('haishin')
    .description('haishin (配信) — Apple MDM for VPP app distribution that explains every failure')
    .exitOverride();

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
    .action(async (options: { devices: string; reset?: boolean; data: string; budget?: string; lang?: string }) => {
      const { runDemo } = await import('./demo.ts');
      await runDemo(options);
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    console.error(`haishin: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
