/**
 * Apple's own apps, by bundle id: the one list for the whole server. The app look-up
 * (src/apple/appmeta), the engine's evidence and the troubleshooter (src/diagnosis) all read it
 * from here. Kept lower-case: iOS matches bundle ids without regard to case, and so do the
 * predicates below.
 */

/**
 * Apple's iWork apps. They are ordinary App Store apps with Adam IDs and can be licensed and
 * installed through Apps and Books although their bundle ids start with `com.apple.`; iPads often
 * come with them pre-installed, and that unmanaged copy must be deleted first (DESIGN §4).
 */
export const IWORK_BUNDLE_IDS: ReadonlySet<string> = new Set(
  ['com.apple.Keynote', 'com.apple.Pages', 'com.apple.Numbers'].map((b) => b.toLowerCase()),
);

/**
 * Apps that ship with iOS/iPadOS. Installing one by Adam ID fails on the device (12065, system
 * app) and most cannot be licensed at all; "deleted" ones come back from the App Store outside
 * MDM. Curated from Apple's published list of bundle ids for the built-in apps (Apple Platform
 * Deployment — the ids MDM restrictions and the Home Screen Layout payload use). This is the
 * union of the two lists haishin used to keep: the app look-up's (this one) and the
 * troubleshooter's (Safari, Settings, Messages, Camera, Photos, App Store, Phone, Health, Find My,
 * Wallet — all already here). Apple's other App Store apps under `com.apple.` (GarageBand
 * `com.apple.mobilegarageband`, iMovie `com.apple.iMovie`, Clips `com.apple.clips`, TestFlight,
 * Apple Store, Swift Playgrounds, iWork) are deliberately absent: they are distributable.
 */
export const APPLE_BUILTIN_BUNDLE_IDS: ReadonlySet<string> = new Set(
  [
    'com.apple.AppStore',
    'com.apple.Bridge', // Watch
    'com.apple.calculator',
    'com.apple.camera',
    'com.apple.compass',
    'com.apple.DocumentsApp', // Files
    'com.apple.facetime',
    'com.apple.findmy',
    'com.apple.Fitness',
    'com.apple.freeform',
    'com.apple.gamecenter',
    'com.apple.Health',
    'com.apple.Home',
    'com.apple.iBooks', // Books
    'com.apple.journal',
    'com.apple.Magnifier',
    'com.apple.Maps',
    'com.apple.measure',
    'com.apple.MobileAddressBook', // Contacts
    'com.apple.mobilecal', // Calendar
    'com.apple.mobilemail',
    'com.apple.mobileme.fmf1', // Find Friends, before Find My
    'com.apple.mobileme.fmip1', // Find iPhone, before Find My
    'com.apple.mobilenotes',
    'com.apple.mobilephone',
    'com.apple.mobilesafari',
    'com.apple.mobileslideshow', // Photos
    'com.apple.MobileSMS', // Messages
    'com.apple.MobileStore', // iTunes Store
    'com.apple.mobiletimer', // Clock
    'com.apple.Music',
    'com.apple.news',
    'com.apple.Passbook', // Wallet
    'com.apple.Passwords',
    'com.apple.Photo-Booth',
    'com.apple.podcasts',
    'com.apple.Preferences', // Settings
    'com.apple.reminders',
    'com.apple.shortcuts',
    'com.apple.stocks',
    'com.apple.tips',
    'com.apple.Translate',
    'com.apple.tv',
    'com.apple.videos',
    'com.apple.VoiceMemos',
    'com.apple.weather',
  ].map((b) => b.toLowerCase()),
);

/** True for the apps that ship with iOS/iPadOS (see {@link APPLE_BUILTIN_BUNDLE_IDS}); never for iWork. */
export function isAppleBuiltinBundle(bundleId: string): boolean {
  const b = bundleId.trim().toLowerCase();
  return b.startsWith('com.apple.') && !IWORK_BUNDLE_IDS.has(b) && APPLE_BUILTIN_BUNDLE_IDS.has(b);
}

/** True for Keynote, Pages and Numbers. */
export function isIWorkBundle(bundleId: string): boolean {
  return IWORK_BUNDLE_IDS.has(bundleId.trim().toLowerCase());
}
