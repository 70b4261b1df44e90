// What a format is: one way of handing reservations to dnsmasq (which files, and what dnsmasq
// must be told to take them in). Each format is one module in ./formats/ behind this interface;
// the publisher and the sync pass call it and never ask which format is configured.
import type { Config, FormatName } from '../config/index.js'
import type { DnsmasqHost } from '../ledger/reservation.js'
import type { OwedNeed } from '../store/owed-apply.js'

/**
 * What dnsmasq needs once the files are written: nothing (it reads them through inotify), an
 * apply (a reload or restart through Salt), or a syntax check on the dnsmasq minion and then
 * an apply, putting the previous files back if the check fails.
 */
export type ApplyNeed = 'none' | OwedNeed

/** The DHCP reservations dnsmasq was last given, as dhcp-host lines, and where they are (null: none). */
export interface ReadBack {
  source: string
  text: string | null
}

export interface FormatChange {
  /** Files written or removed; for a directory of files, the directories that changed. */
  filesChanged: string[]
  /** Per-reservation files written and removed (formats with one file per reservation). */
  entriesWritten: number
  entriesRemoved: number
  /** Reservations not published because a file saltmasq does not own holds their name. */
  blocked: string[]
}

export interface WrittenChange extends FormatChange {
  /** Puts back what this write replaced (after a failed check). */
  undo: () => Promise<void>
}

/** The lines one file would gain and lose (the dry run shows them; comments left out). */
export interface FileLines {
  path: string
  added: string[]
  removed: string[]
}

/** A write worked out against what is on disk, not yet carried out. */
export interface PendingWrite {
  readonly need: ApplyNeed
  /** What `commit` would change, line by line, per file. */
  lines: () => FileLines[]
  commit: () => Promise<WrittenChange>
}

export interface Format {
  readonly name: FormatName
  /**
   * True when dnsmasq pays so much for an apply (a SIGHUP re-reading a directory of files) that
   * applies are paced to one per RELOAD_MIN_INTERVAL_S rather than sent at once.
   */
  readonly pacedApply: boolean
  /** Works out what publishing `reservations` (sorted by minion id) takes; touches nothing. */
  prepare: (reservations: readonly DnsmasqHost[]) => Promise<PendingWrite>
  /** The DHCP reservations this format last published, as dhcp-host lines, and where they are. */
  readBack: () => Promise<ReadBack>
  /** Files in saltmasq's directories that it did not write (left alone, reported). */
  readonly unownedFiles: string[]
  /**
   * Where an earlier saltmasq recorded an owed apply before the record moved beside the state
   * file; honoured once, then removed.
   */
  readonly legacyOwedMarker?: string
}

/** Opens a format: reads what it published before, so it can tell what a sync changes. */
export type OpenFormat = (config: Config) => Promise<Format>
