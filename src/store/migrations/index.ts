import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_mdm_core.ts';
import * as m0002 from './0002_admin.ts';
import * as m0003 from './0003_vpp.ts';
import * as m0004 from './0004_engine.ts';
import * as m0005 from './0005_auto_distribution.ts';
import * as m0006 from './0006_hot_path_indexes.ts';
import * as m0007 from './0007_job_step.ts';
import * as m0008 from './0008_queue_compaction.ts';
import * as m0009 from './0009_app_updates.ts';
import * as m0010 from './0010_leases.ts';
import * as m0011 from './0011_vpp_notification_inbox.ts';
import * as m0012 from './0012_shared_pacing_and_diagnosis_queue.ts';
import * as m0013 from './0013_enrollment_links.ts';
import * as m0014 from './0014_identity_renewal.ts';
import * as m0015 from './0015_scep_challenges.ts';
import * as m0016 from './0016_vpp_notification_ids.ts';
import * as m0018 from './0018_identities_outlive_groups.ts';
import * as m0019 from './0019_administrators.ts';
import * as m0020 from './0020_command_queue_order.ts';

/** Migrations live in code (not read from a folder) so they work the same from source, tests and any bundle. */
const MIGRATIONS: Record<string, Migration> = {
  '0001_mdm_core': m0001,
  '0002_admin': m0002,
  '0003_vpp': m0003,
  '0004_engine': m0004,
  '0005_auto_distribution': m0005,
  '0006_hot_path_indexes': m0006,
  '0007_job_step': m0007,
  '0008_queue_compaction': m0008,
  '0009_app_updates': m0009,
  '0010_leases': m0010,
  '0011_vpp_notification_inbox': m0011,
  '0012_shared_pacing_and_diagnosis_queue': m0012,
  '0013_enrollment_links': m0013,
  '0014_identity_renewal': m0014,
  '0015_scep_challenges': m0015,
  '0016_vpp_notification_ids': m0016,
  '0018_identities_outlive_groups': m0018,
  '0019_administrators': m0019,
  '0020_command_queue_order': m0020,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
