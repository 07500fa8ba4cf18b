//! UniFFI's generator, built from the same `uniffi` version as the bindings'
//! scaffolding so the generated Kotlin, Swift and Python match the library they load
//! (`scripts/bindings`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
