package dev.weft;

import java.lang.ref.Cleaner;

/** The one Cleaner (one daemon thread) that frees the native handles an app forgot to close. */
final class Cleanup {
  static final Cleaner CLEANER = Cleaner.create();

  private Cleanup() {}
}
