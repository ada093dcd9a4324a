//! list commands (being filled in).

use crate::command::Command;

pub static COMMANDS: &[Command] = &[];
