//! Name folding as a table of spellings and what they fold to, plus properties: folding
//! never panics and folding twice changes nothing.

use intake_shared::fold;
use proptest::prelude::*;

#[test]
fn spellings_fold_to_their_key() {
    let cases: &[(&str, &str, &str)] = &[
        // (what, input, folded)
        ("Serbian Cyrillic", "Ђорђевић", "djordjevic"),
        ("Serbian Latin", "Đorđević", "djordjevic"),
        ("ASCII spelling", "Djordjevic", "djordjevic"),
        ("upper case", "ĐORĐEVIĆ", "djordjevic"),
        ("Cyrillic upper case", "ЂОРЂЕВИЋ", "djordjevic"),
        ("љ and њ", "Љиљана Његош", "ljiljana njegos"),
        ("Latin lj and nj", "Ljiljana Njegoš", "ljiljana njegos"),
        ("џ", "Џеврић", "dzevric"),
        ("dž", "Dževerdanović", "dzeverdanovic"),
        ("ǅ as one code point", "ǅeverdanović", "dzeverdanovic"),
        (
            "ж ш ч ћ",
            "Жарко Шаровић Чолић Ћосић",
            "zarko sarovic colic cosic",
        ),
        (
            "ž š č ć",
            "Žarko Šarović Čolić Ćosić",
            "zarko sarovic colic cosic",
        ),
        (
            "every Serbian Cyrillic letter",
            "абвгдђежзијклљмнњопрстћуфхцчџш",
            "abvgddjezzijklljmnnjoprstcufhccdzs",
        ),
        ("Albanian ë and ç", "Arbër Çollaku", "arber collaku"),
        ("Albanian digraphs stay", "Xhemajl Gashi", "xhemajl gashi"),
        ("Turkish", "Gülşen Yıldız İnce", "gulsen yildiz ince"),
        ("Romanian comma below", "Ștefan Țurcanu", "stefan turcanu"),
        (
            "other marks",
            "Ångström Øre Niño Ærø Straße",
            "angstrom ore nino aero strasse",
        ),
        (
            "decomposed marks",
            "Dj\u{006F}\u{0301}rdjevic\u{0301}",
            "djordjevic",
        ),
        (
            "whitespace runs",
            "  Arben \t\n Krasniqi  ",
            "arben krasniqi",
        ),
        ("punctuation", "O'Brien-Smith, Jr.", "o brien smith jr"),
        ("digits kept", "Room 12b", "room 12b"),
        ("only punctuation", " -- ,. ", ""),
        ("empty", "", ""),
        (
            "soft and hard signs write nothing",
            "Гоголь  ъ  Ан",
            "gogol an",
        ),
        ("other scripts lowercased", "Σοφία", "σοφία"),
    ];
    for (what, input, folded) in cases {
        assert_eq!(fold(input), *folded, "{what}: {input:?}");
    }
}

#[test]
fn the_three_spellings_of_one_name_share_a_key() {
    let keys: Vec<String> = [
        "Ђорђевић",
        "Đorđević",
        "Djordjevic",
        "djordjević",
        "DJORDJEVIC",
    ]
    .iter()
    .map(|s| fold(s))
    .collect();
    assert!(keys.iter().all(|k| k == "djordjevic"), "{keys:?}");
}

proptest! {
    #[test]
    fn folding_is_idempotent_on_any_text(s in any::<String>()) {
        let once = fold(&s);
        prop_assert_eq!(fold(&once), once.clone());
        prop_assert_eq!(once.trim(), once.as_str());
        prop_assert!(!once.contains("  "));
    }

    #[test]
    fn folding_is_idempotent_on_names(s in "[ \\-'a-zA-ZčćđšžČĆĐŠŽëçËÇа-шА-ШђјљњћџЂЈЉЊЋЏ\u{0300}-\u{036F}]{0,40}") {
        let once = fold(&s);
        prop_assert_eq!(fold(&once), once.clone());
        prop_assert!(once.chars().all(|c| c == ' ' || c.is_ascii_lowercase()), "{:?}", once);
    }
}
