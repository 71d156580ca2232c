//! The `fibrpc demo` front door, run as a user runs it.

use std::process::Command;

fn demo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fibrpc"))
        .arg("demo")
        .args(args)
        .output()
        .expect("cannot run fibrpc")
}

#[test]
fn demo_prints_the_tutorials_lines() {
    let output = demo(&[]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        " [x] Requesting fib(30)\n [.] Got 832040\n"
    );
}

#[test]
fn demo_answers_past_64_bits() {
    let output = demo(&["100"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(" [.] Got 354224848179261915075\n"),
        "{stdout}"
    );
}

#[test]
fn demo_reports_a_refused_call_and_fails() {
    let output = demo(&["5", "1000001"]);
    assert!(!output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains(" [.] Got 5\n"), "{stdout}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("above this server's bound of 1000000"),
        "{stderr}"
    );
}
