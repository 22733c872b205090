//! `lvc lsp`: the language server (lvc_lsp) on stdin/stdout.

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Started by an editor, not by hand: it speaks the Language Server Protocol on
stdin/stdout and logs to stderr. Set-ups for VS Code, Neovim and Helix: docs/editors.md.

The client's initializationOptions choose how nets are checked, as lvc check's flags do:
  {\"phase\": \"train\", \"stages\": [\"deploy\"], \"input_shapes\": {\"data\": [1, 3, 224, 224]}}
By default: the TEST phase, no stages, the shapes the net declares."
)]
pub struct LspArgs {
    /// Accepted for editors that pass it (stdio is the only transport).
    #[arg(long)]
    pub stdio: bool,
}

pub fn run(_args: LspArgs) -> u8 {
    match lvc_lsp::serve_stdio() {
        Ok(()) => 0,
        Err(e) => {
            errln!("error[lvc::lsp]: {e}");
            2
        }
    }
}
