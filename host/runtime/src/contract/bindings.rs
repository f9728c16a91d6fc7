//! Host-side bindings generated from the WIT contract `passerelle:connector@0.1.3`.
//! Components built against 0.1.0, 0.1.1 and 0.1.2 link too: wasmtime resolves their
//! `@0.1.0`, `@0.1.1` and `@0.1.2` imports to these `@0.1.3` definitions (same 0.1
//! series), and each version of the series only added functions, types and interfaces
//! (0.1.3: `clock`).
//!
//! Imports are async (they do I/O) and trappable (a run limit hit traps the guest).

wasmtime::component::bindgen!({
    path: "../../wit/v0.1.3",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
});
