//! `lvc serve`: the DIGITS workflow in the browser (`lvc_server`). This
//! command parses the options and hands them over; the server runs the
//! jobs as children of this same binary.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc serve                              # the current folder, on http://127.0.0.1:8080/
  lvc serve --root ~/lv --bind 127.0.0.1:9000 --jobs 2
  lvc serve --bind 0.0.0.0:8080 --token \"$(openssl rand -hex 16)\"

The workspace root holds dataset folders (manifest.json) and run folders (run.json) at any
depth. Pages: home (datasets and runs), a dataset, a run (live curves, epochs, evaluation,
download), new dataset, new run (the net editor with live `lvc check` diagnostics, solver
settings, pretrained weights with `lvc weights check` and --adapt choices), inference (a val
record or an uploaded DICOM with opacity and mask sliders), jobs. The JSON API the pages use is
documented in docs/api.md. The server's own state (the job queue, inference outputs, uploads)
lives in ROOT/.lvc-serve/; jobs survive a restart, and a training the server was running
resumes (--resume) when it starts again.

Only loopback addresses are served without --token. With a token, every request carries it as
`Authorization: Bearer TOKEN` or logs in at /login (a cookie).

Exit status: 0 stopped by Ctrl-C, 2 could not start (root, address, token).")]
pub struct ServeArgs {
    /// Workspace root: every path the server reads or writes lies under it.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
    /// Address and port to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Required for a non-loopback --bind; at least 16 characters.
    #[arg(long, value_name = "TOKEN", env = "LVC_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Jobs (trainings, imports) run at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
}

pub fn run(args: ServeArgs) -> u8 {
    let lvc = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name("lvc"),
        Err(e) => {
            errln!("error[lvc::serve::exe]: cannot find the lvc binary the jobs run: {e}");
            return 2;
        }
    };
    let opts = lvc_server::ServeOptions {
        root: args.root,
        bind: args.bind,
        token: args.token,
        jobs: args.jobs as usize,
        lvc,
    };
    match lvc_server::serve(opts) {
        Ok(()) => 0,
        Err(e) => {
            errln!("{:?}", miette::Report::new(e));
            2
        }
    }
}
