//! Host-side bindings generated from the WIT contract `passerelle:connector@0.1.0`.
//!
//! Imports are async (they do I/O) and trappable (a run limit hit traps the guest).

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
});
