//! `file:line` references read from the output of common tools.

use context::diagnostics::{excerpt, locations, resolve};

fn found(output: &str) -> Vec<(String, u32, &'static str)> {
    locations(output)
        .into_iter()
        .map(|location| (location.path, location.line, location.format))
        .collect()
}

#[test]
fn rustc_and_cargo() {
    let output = "error[E0308]: mismatched types\n  --> src/billing.rs:12:5\n   |\n12 |     total\n\nthread 'main' panicked at src/main.rs:4:9:\nattempt to add with overflow\n";
    assert_eq!(
        found(output),
        vec![
            ("src/billing.rs".to_owned(), 12, "rustc"),
            ("src/main.rs".to_owned(), 4, "rustc"),
        ]
    );
}

#[test]
fn tsc_both_styles() {
    let output = "src/cart.ts(14,7): error TS2322: Type 'string' is not assignable.\nsrc/view.tsx:3:10 - error TS2304: Cannot find name 'x'.\n";
    assert_eq!(
        found(output),
        vec![
            ("src/cart.ts".to_owned(), 14, "tsc"),
            ("src/view.tsx".to_owned(), 3, "tsc"),
        ]
    );
}

#[test]
fn eslint_stylish() {
    let output = "\n/home/dev/shop/src/cart.js\n  10:5  error  'x' is defined but never used  no-unused-vars\n  22:1  warning  Unexpected console statement  no-console\n\n✖ 2 problems\n";
    assert_eq!(
        found(output),
        vec![
            ("/home/dev/shop/src/cart.js".to_owned(), 10, "eslint"),
            ("/home/dev/shop/src/cart.js".to_owned(), 22, "eslint"),
        ]
    );
}

#[test]
fn pytest_and_python_tracebacks() {
    let output = "tests/test_cart.py:31: AssertionError\nTraceback (most recent call last):\n  File \"/srv/app/shop/cart.py\", line 8, in total\n    return sum(prices)\n";
    assert_eq!(
        found(output),
        vec![
            ("tests/test_cart.py".to_owned(), 31, "pytest"),
            ("/srv/app/shop/cart.py".to_owned(), 8, "python traceback"),
        ]
    );
}

#[test]
fn go_build_test_and_panics() {
    let output = "./cmd/server.go:17:2: undefined: listen\n    server_test.go:40: got 1, want 2\ngoroutine 1 [running]:\nmain.start()\n\t/home/dev/app/cmd/server.go:21 +0x1d\n";
    assert_eq!(
        found(output),
        vec![
            ("./cmd/server.go".to_owned(), 17, "go"),
            ("server_test.go".to_owned(), 40, "go"),
            ("/home/dev/app/cmd/server.go".to_owned(), 21, "go"),
        ]
    );
}

#[test]
fn node_stack_traces() {
    let output = "TypeError: x is not a function\n    at total (/app/src/cart.js:12:15)\n    at file:///app/src/main.mjs:3:1\n    at node:internal/main:1:1\n";
    assert_eq!(
        found(output),
        vec![
            ("/app/src/cart.js".to_owned(), 12, "node"),
            ("/app/src/main.mjs".to_owned(), 3, "node"),
        ]
    );
}

#[test]
fn junit_and_javac() {
    let output = "java.lang.AssertionError: expected 2\n\tat com.shop.OrderTest.totals(OrderTest.java:27)\n\tat com.shop.Order$Line.sum(Order.java:14)\n[ERROR] /build/src/main/java/com/shop/Order.java:[9,12] cannot find symbol\n";
    assert_eq!(
        found(output),
        vec![
            ("com/shop/OrderTest.java".to_owned(), 27, "junit"),
            ("com/shop/Order.java".to_owned(), 14, "junit"),
            (
                "/build/src/main/java/com/shop/Order.java".to_owned(),
                9,
                "javac"
            ),
        ]
    );
}

#[test]
fn prose_and_addresses_are_not_locations() {
    assert!(found("Meet at 10:30, see https://example.com and v1.2.3").is_empty());
}

#[test]
fn written_paths_resolve_to_project_files() {
    let files = [
        "src/main/java/com/shop/Order.java",
        "cmd/server.go",
        "src/cart.js",
        "web/src/cart.js",
        "tests/test_cart.py",
    ];
    assert_eq!(
        resolve("com/shop/Order.java", &files),
        Some("src/main/java/com/shop/Order.java")
    );
    assert_eq!(resolve("./cmd/server.go", &files), Some("cmd/server.go"));
    assert_eq!(
        resolve("/home/dev/app/cmd/server.go", &files),
        Some("cmd/server.go")
    );
    assert_eq!(
        resolve("/home/dev/shop/web/src/cart.js", &files),
        Some("web/src/cart.js")
    );
    assert_eq!(resolve("cart.js", &files), None, "two files share the name");
    assert_eq!(
        resolve("C:\\work\\tests\\test_cart.py", &files),
        Some("tests/test_cart.py")
    );
    assert_eq!(resolve("src/missing.rs", &files), None);
}

#[test]
fn excerpts_show_the_lines_around() {
    let content = (1..=20)
        .map(|line| format!("line {line}\n"))
        .collect::<String>();
    let (first, text) = excerpt(&content, 10, 2);
    assert_eq!(first, 8);
    assert_eq!(
        text,
        "     8 line 8\n     9 line 9\n>   10 line 10\n    11 line 11\n    12 line 12\n"
    );
}
