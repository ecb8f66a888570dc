// One style for the whole workspace: neostandard (the `standard` rules js-libp2p's code follows),
// with typescript-eslint for the .ts sources. `npm run lint` checks, `npm run lint -- --fix` fixes.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['**/dist/**', 'test/size/dist/**', 'bench-results/**', 'coverage/**', '**/*.d.ts']
  }),
  {
    rules: {
      // `void promise` marks a promise deliberately left unawaited (a fire-and-forget publish,
      // an event handler); the code relies on it instead of a floating-promise comment
      'no-void': 'off',
      // `for await (const frame of frames) return frame` is how a libp2p stream's first frame is read
      'no-unreachable-loop': ['error', { ignore: ['ForOfStatement'] }],
      // flags set from a promise's callback while a loop polls a page (`done`, `aborted`) are invisible to it
      'no-unmodified-loop-condition': 'off'
    }
  }
]
