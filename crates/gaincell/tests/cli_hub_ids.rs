//! A model given as a Hub id with an owner (`owner/name`) that is not a local path is looked up on the Hub, like a
//! bare name; a path that does not exist is reported as a missing path.

use std::process::Command;

fn run_offline(model: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args(["generate", "--model", model, "-n", "1"])
        .env("HF_HUB_OFFLINE", "1")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn owner_slash_name_goes_to_the_hub_and_a_missing_path_does_not() {
    for id in ["openai-community/gpt2", "karpathy/tinyllamas"] {
        let (code, err) = run_offline(id);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("model `{id}` is not a local folder"))
                && err.contains("HuggingFace Hub")
                && err.contains("HF_HUB_OFFLINE=1"),
            "{err}"
        );
    }
    let (code, err) = run_offline("./no/such/model");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no such file or folder"), "{err}");
}
