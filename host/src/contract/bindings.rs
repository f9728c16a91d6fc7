//! Host-side bindings generated from the WIT contract `passerelle:connector@0.1.1`. Components built
//! against 0.1.0 link too: wasmtime resolves their `@0.1.0` imports to these `@0.1.1`
//! definitions (same 0.1 series), and 0.1.1 only added functions.
//!
//! Imports are async (they do I/O) and trappable (a run limit hit traps the guest).

wasmtime::component::bindgen!({
    path: "../wit/v0.1.1",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
});
