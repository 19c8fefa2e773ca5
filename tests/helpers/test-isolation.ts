// Which runtime a suite's sandboxes run under (WARREN_TEST_ISOLATION, see
// warren-fixture.ts and node-fixture.ts), for the few checks that only hold
// under one of them. Each use says why in a comment beside it.

/** True when the suites run their sandboxes under gVisor (`npm run test:gvisor`). */
export const underGvisor = process.env.WARREN_TEST_ISOLATION === 'gvisor'
