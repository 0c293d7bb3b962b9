//! `dataport token new`: a fresh secret, printed once, and the entry for
//! the server's auth_tokens file, which holds only the secret's sha256.

use std::process::ExitCode;

use dataport_server::auth::{Scopes, secret_sha256};

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Print a new secret and the [[token]] entry to paste into the auth_tokens file.
    New {
        /// Who the token is for, as call lines will name them: letters, digits, '.', '-', '_', '@'.
        name: String,
        /// AREA:ACCESS, AREA one of greeter, route, position, market, outliers, files or *,
        /// ACCESS read or write (write includes read); repeat or separate with commas.
        #[arg(long = "scope", required = true, value_delimiter = ',')]
        scopes: Vec<String>,
    },
}

pub fn run(command: TokenCommand) -> ExitCode {
    let TokenCommand::New { name, scopes } = command;
    match entry(&name, &scopes) {
        Ok((secret, entry)) => {
            println!(
                "secret for {name} (shown once: the caller sends it as `authorization: Bearer SECRET`, or dataport --token SECRET):"
            );
            println!("{secret}");
            println!();
            println!("add to the auth_tokens file (the server reads it again when it changes):");
            print!("{entry}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// A new secret for `name`, and its `[[token]]` entry.
fn entry(name: &str, scopes: &[String]) -> Result<(String, String), String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b)) {
        return Err(format!("name {name:?} may hold only letters, digits, '.', '-', '_' and '@'"));
    }
    Scopes::parse(scopes)?;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| format!("no random bytes from the system: {e}"))?;
    let secret: String =
        std::iter::once("dp_".to_owned()).chain(random.iter().map(|b| format!("{b:02x}"))).collect();
    let quoted: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
    let entry = format!(
        "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = [{}]\n",
        secret_sha256(&secret),
        quoted.join(", ")
    );
    Ok((secret, entry))
}

#[cfg(test)]
mod tests {
    use super::entry;

    #[test]
    fn a_new_token_is_a_fresh_secret_and_an_entry_holding_only_its_hash() {
        let scopes = ["outliers:read".to_owned(), "market:write".to_owned()];
        let (secret, text) = entry("collector", &scopes).unwrap();
        assert!(secret.starts_with("dp_") && secret.len() == 67, "{secret}");
        assert!(!text.contains(&secret), "the entry never holds the secret");
        assert!(text.contains(&dataport_server::auth::secret_sha256(&secret)));
        assert!(text.ends_with("scopes = [\"outliers:read\", \"market:write\"]\n"), "{text}");
        assert_ne!(entry("collector", &scopes).unwrap().0, secret, "each secret is new");
        assert!(entry("a b", &scopes).unwrap_err().contains("\"a b\""));
        assert!(entry("x", &["shop:read".to_owned()]).unwrap_err().contains("\"shop:read\""));
    }
}
