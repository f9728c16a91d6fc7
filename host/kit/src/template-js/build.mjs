// Builds this connector into target/<name>.wasm (`passerelle connector build .` runs it).
// The guest gets no WASI random, stdio, clocks or HTTP: it reaches the world only
// through passerelle's imports (a component importing wasi:http is refused).
import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, readFile, writeFile } from 'node:fs/promises';

const { name } = JSON.parse(await readFile('package.json', 'utf8'));
const { component } = await componentize({
  sourcePath: 'app.js',
  witPath: 'wit',
  worldName: 'connector',
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await mkdir('target', { recursive: true });
await writeFile(`target/${name}.wasm`, component);
console.log(`target/${name}.wasm`);
