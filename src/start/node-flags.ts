// The V8 flags saltmasq is started with, wherever it is started: `npm start`, the image's CMD,
// the systemd unit, and the lab (test/unit/node-flags.test.ts holds them to this list). They must
// be given on the command line: V8 sizes the young generation when it creates the heap.
//
// A semi-space of 4 MB instead of Node's 16 MB keeps the young generation (two semi-spaces) from
// holding up to 32 MB that a sync's short-lived garbage fills. B3 at 50,000 reservations: peak
// RSS through the syncs 226 MB with 16 MB, 195 MB with 4 MB (100,000: 333 → 302 MB), for ~45 ms
// more in the mine stage (more scavenges while its JSON is parsed). How far the heap grows is
// set at run time (HEAP_GROWTH_PERCENT).
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4']
