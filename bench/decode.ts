/**
 * `node --import tsx bench/decode.ts`: the pgoutput decoder alone (no database, no socket), on N synthetic insert
 * messages framed as the walsender frames them (bench/decode-input.ts), through exactly what the replication
 * stream runs per CopyData chunk: PgoutputDecoder.decode(chunk, XLOG_BODY_OFFSET) → StreamEvent. Prints
 * changes/s by wall clock and per CPU-second of the process (medians of 5 rounds), GCs and GC time per round, and bytes allocated per change.
 *
 *   N=1000000 node --import tsx bench/decode.ts
 */
import { PgoutputDecoder, XLOG_BODY_OFFSET } from '../src/adapters/postgres/cdc/pgoutput-decode.js';
import { syntheticStream } from './decode-input.js';
import { measure, report } from './decode-measure.js';

const n = Number(process.env.N ?? 1_000_000);
const chunks = syntheticStream(n);
const decoder = new PgoutputDecoder();
report('decode', n, await measure(chunks, (c) => (c[0] === 0x77 ? decoder.decode(c, XLOG_BODY_OFFSET) : undefined)));
