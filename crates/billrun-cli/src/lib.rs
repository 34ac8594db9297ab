//! The `billrun` command: the command line's tree, the exit codes and the dispatch to the
//! product (`billrun`), the demo (`billrun-demo`) and the bench (`billrun-bench`). The binary
//! (`main.rs`) only sets up logging and the runtime.

pub mod cli;
