// Ambient declarations: text imports and the build-time constants of scripts/build.ts.

// Bun imports these as strings (`with { type: 'text' }`) and embeds them in the executable.
declare module '*.sql' {
  const text: string;
  export default text;
}

/**
 * `false` in release builds (`bun build --define SECRYN_TEST_HOOKS=false`, scripts/build.ts), so
 * the bundler drops test-only code guarded by it; undefined (on) when running from source. Test
 * it as `typeof SECRYN_TEST_HOOKS !== 'undefined' && !SECRYN_TEST_HOOKS` at the use site: only
 * that form is folded away (a constant exported from a module is not inlined across modules).
 */
declare const SECRYN_TEST_HOOKS: boolean | undefined;
