//! The Greeter's two answers.

/// The answer to `SayHello`.
pub fn hello(name: &str) -> String {
    format!("Hello, {name}!")
}

/// The answer to `SayHelloAgain`.
pub fn hello_again(name: &str) -> String {
    format!("Hello again, {name}!")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_name_the_caller_verbatim() {
        assert_eq!(hello("world"), "Hello, world!");
        assert_eq!(hello_again("world"), "Hello again, world!");
        assert_eq!(hello(""), "Hello, !");
        assert_eq!(hello("Zoë 🚀"), "Hello, Zoë 🚀!");
    }
}
