//! The search key of a name: what two spellings of one name have in common, so that a
//! supervisor typing `djordjevic` finds Ђорђевић and Đorđević, and duplicate hints see
//! one person behind both. It lives in `shared` so that a device, offline, folds
//! exactly as the server does.
//!
//! Folding transliterates Serbian Cyrillic to Latin, drops diacritics (`đ` becomes
//! `dj`, the way Serbian and Albanian names are typed on keyboards without it),
//! lowercases, and turns every run of whitespace and punctuation into one space.

/// The folded form of `s`: lowercase Latin letters without marks, digits, letters of
/// other scripts lowercased, words separated by single spaces, no leading or trailing
/// space. `fold(fold(s)) == fold(s)`.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // A separator is written only before the next word, so runs collapse and the
    // result is trimmed without a second pass.
    let mut pending_space = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if is_combining_mark(c) {
            // Decomposed input (`c` + U+030C) folds like precomposed `č`; a mark
            // never separates words.
            continue;
        }
        match fold_char(c) {
            // A letter with no sound of its own (ъ, ь) writes nothing, like a mark.
            Folded::Str("") => {}
            Folded::Str(text) => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push_str(text);
            }
            Folded::Keep if c.is_alphanumeric() => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
            }
            Folded::Keep => pending_space = true,
        }
    }
    out
}

enum Folded {
    /// The letter is written as this Latin text.
    Str(&'static str),
    /// Kept as it is when alphanumeric, else a separator.
    Keep,
}

/// Combining diacritical marks (the blocks in common use), dropped wherever they occur.
fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// One lowercase character folded: Cyrillic to Latin, Latin letters with marks to
/// their base letters.
fn fold_char(c: char) -> Folded {
    let s = match c {
        // Serbian Cyrillic (Vuk's alphabet), each letter as its Latin counterpart
        // already without marks: ђ → đ → dj, ж → ž → z, ћ/ч → ć/č → c, џ → dž → dz.
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'ђ' => "dj",
        'е' => "e",
        'ж' => "z",
        'з' => "z",
        'и' => "i",
        'ј' => "j",
        'к' => "k",
        'л' => "l",
        'љ' => "lj",
        'м' => "m",
        'н' => "n",
        'њ' => "nj",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'ћ' => "c",
        'у' => "u",
        'ф' => "f",
        'х' => "h",
        'ц' => "c",
        'ч' => "c",
        'џ' => "dz",
        'ш' => "s",
        // Macedonian letters, for names written in the neighbouring alphabet.
        'ѓ' => "gj",
        'ќ' => "kj",
        'ѕ' => "dz",
        // Russian letters that turn up in names typed on a Russian layout.
        'й' => "j",
        'ё' => "e",
        'э' => "e",
        'ы' => "y",
        'ю' => "ju",
        'я' => "ja",
        'щ' => "sc",
        'ъ' | 'ь' => "",
        // Serbian Latin digraphs as single code points (from legacy encodings).
        'ǆ' => "dz",
        'ǉ' => "lj",
        'ǌ' => "nj",
        // Latin letters without a decomposition to a base letter.
        'đ' => "dj",
        'ð' => "d",
        'ħ' => "h",
        'ı' => "i",
        'ł' => "l",
        'ŀ' => "l",
        'ŧ' => "t",
        'ø' => "o",
        'æ' => "ae",
        'œ' => "oe",
        'ß' => "ss",
        'þ' => "th",
        'ĳ' => "ij",
        'ŉ' => "n",
        // Precomposed letters with marks (Latin-1 Supplement, Latin Extended-A and
        // the Romanian comma-below letters): the base letter.
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ǎ' => "a",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' | 'ǧ' => "g",
        'ĥ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ǐ' => "i",
        'ĵ' | 'ǰ' => "j",
        'ķ' | 'ǩ' => "k",
        'ĺ' | 'ļ' | 'ľ' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ō' | 'ŏ' | 'ő' | 'ǒ' => "o",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ţ' | 'ť' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ǔ' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return Folded::Keep,
    };
    Folded::Str(s)
}
