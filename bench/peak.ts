// npm run bench:peak [-- --quick] — measure this CPU's ceilings again (bench/peak.cc via
// bench/ceilings.ts: FMA GFLOP/s per ISA, read GB/s from DRAM and from the L3, on 1 and all threads)
// and store them in bench/.cache/ceilings-<cpu>.json, where every bench's "% of limit" reads them.
// The other benches measure them by themselves when the cache is missing or for another CPU.
import { cacheFile, describeCeilings, loadCeilings } from './ceilings.js';

const { ceilings, source } = loadCeilings({ force: true, quick: process.argv.includes('--quick') });
if (!ceilings) process.exit(1);
console.log(describeCeilings(ceilings, source));
console.log(`best and median of the samples: ${JSON.stringify({ fma: ceilings.fma, dram: ceilings.dram, l3: ceilings.l3 })}`);
console.log(`wrote ${cacheFile(ceilings.cpu)}`);
