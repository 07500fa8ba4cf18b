//! Serbian Latin → Cyrillic transliteration, so the sr-Cyrl interface is generated from
//! the sr-Latn strings instead of being a second hand-kept copy that drifts.
//!
//! Serbian's two alphabets map one to one, except that three Latin digraphs are single
//! Cyrillic letters (lj → љ, nj → њ, dž → џ) and a few words split them across a prefix
//! (nad|živeti, in|jekcija). Some text must not change at all: `{placeholders}` (the
//! `tf` helper fills them in later), web addresses, words with digits, and the short list
//! of codes in [`KEEP`] ("CSV", "JSON", …), which Serbian Cyrillic text writes in Latin.

/// Words written in Latin letters in Cyrillic text too (file formats, technical codes).
/// Serbian acronyms such as "NVO" are not here: they are transliterated ("НВО").
pub const KEEP: &[&str] = &[
    "CSV", "JSON", "SVG", "PDF", "HTML", "HTTP", "HTTPS", "URL", "UTF", "BOM", "API", "OpenAPI",
    "ID", "UUID", "QR", "SMS", "Intake",
];

/// Word beginnings where a digraph's two letters belong to different morphemes and stay
/// two Cyrillic letters, with the position (in letters) of the first of the pair.
const SPLIT_DIGRAPHS: &[(&str, usize)] = &[
    ("nadž", 2),    // nadživeti → надживети
    ("podž", 2),    // podžanr → поджанр
    ("injek", 1),   // injekcija → инјекција
    ("konjug", 2),  // konjugacija → конјугација
    ("konjunk", 2), // konjunkcija → конјункција
    ("vanjez", 2),  // vanjezički → ванјезички
    ("tanjug", 2),  // Tanjug → Танјуг
];

/// Transliterates Serbian Latin text to Cyrillic, keeping the case of every letter
/// ("LJUBAV" → "ЉУБАВ", "Ljubav" → "Љубав") and leaving `{…}` spans, web addresses,
/// words with digits and the words of [`KEEP`] as they are.
pub fn to_cyrillic(latin: &str) -> String {
    let text = compose_carons(latin);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            // A placeholder is copied up to its closing brace; an unclosed one to the end.
            let end = chars[i..]
                .iter()
                .position(|&c| c == '}')
                .map_or(chars.len(), |p| i + p + 1);
            out.extend(&chars[i..end]);
            i = end;
        } else if starts_url(&chars[i..]) && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let end = chars[i..]
                .iter()
                .position(|c| c.is_whitespace())
                .map_or(chars.len(), |p| i + p);
            out.extend(&chars[i..end]);
            i = end;
        } else if c.is_alphanumeric() {
            let end = chars[i..]
                .iter()
                .position(|c| !c.is_alphanumeric())
                .map_or(chars.len(), |p| i + p);
            word_to_cyrillic(&chars[i..end], &mut out);
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn starts_url(rest: &[char]) -> bool {
    ["http://", "https://", "www."]
        .iter()
        .any(|p| p.chars().count() <= rest.len() && p.chars().zip(rest).all(|(a, &b)| a == b))
}

fn word_to_cyrillic(word: &[char], out: &mut String) {
    let as_string: String = word.iter().collect();
    // q, w, x and y are not Serbian letters: a word with one is a foreign name.
    let foreign = |c: &char| matches!(c.to_ascii_lowercase(), 'q' | 'w' | 'x' | 'y');
    if KEEP.contains(&as_string.as_str())
        || word.iter().any(char::is_ascii_digit)
        || word.iter().any(foreign)
    {
        out.push_str(&as_string);
        return;
    }
    let lower = as_string.to_lowercase();
    let split_at = SPLIT_DIGRAPHS
        .iter()
        .find(|(prefix, _)| lower.starts_with(prefix))
        .map(|&(_, at)| at);
    let mut i = 0;
    while i < word.len() {
        let c = word[i];
        if let Some(&next) = word.get(i + 1)
            && split_at != Some(i)
            && let Some(cyr) = digraph(c, next)
        {
            out.push(cyr);
            i += 2;
            continue;
        }
        out.push(letter(c));
        i += 1;
    }
}

/// The Cyrillic letter for a Latin digraph, in the case of its first letter.
fn digraph(first: char, second: char) -> Option<char> {
    let lower = match (first.to_ascii_lowercase(), second) {
        ('l', 'j' | 'J') => 'љ',
        ('n', 'j' | 'J') => 'њ',
        ('d', 'ž' | 'Ž') => 'џ',
        _ => return None,
    };
    Some(if first.is_uppercase() {
        upper(lower)
    } else {
        lower
    })
}

fn letter(c: char) -> char {
    let lower = match c.to_lowercase().next().unwrap_or(c) {
        'a' => 'а',
        'b' => 'б',
        'c' => 'ц',
        'č' => 'ч',
        'ć' => 'ћ',
        'd' => 'д',
        'đ' => 'ђ',
        'e' => 'е',
        'f' => 'ф',
        'g' => 'г',
        'h' => 'х',
        'i' => 'и',
        'j' => 'ј',
        'k' => 'к',
        'l' => 'л',
        'm' => 'м',
        'n' => 'н',
        'o' => 'о',
        'p' => 'п',
        'r' => 'р',
        's' => 'с',
        'š' => 'ш',
        't' => 'т',
        'u' => 'у',
        'v' => 'в',
        'z' => 'з',
        'ž' => 'ж',
        // Letters of other languages have no Serbian counterpart.
        _ => return c,
    };
    if c.is_uppercase() {
        upper(lower)
    } else {
        lower
    }
}

fn upper(c: char) -> char {
    c.to_uppercase().next().unwrap_or(c)
}

/// Joins a letter and a combining caron or acute (text typed on some keyboards arrives
/// decomposed: "c\u{30C}") into the precomposed letter the table knows.
fn compose_carons(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\u{30C}', '\u{301}']) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let composed = match (out.chars().last(), c) {
            (Some('c'), '\u{30C}') => Some('č'),
            (Some('C'), '\u{30C}') => Some('Č'),
            (Some('s'), '\u{30C}') => Some('š'),
            (Some('S'), '\u{30C}') => Some('Š'),
            (Some('z'), '\u{30C}') => Some('ž'),
            (Some('Z'), '\u{30C}') => Some('Ž'),
            (Some('c'), '\u{301}') => Some('ć'),
            (Some('C'), '\u{301}') => Some('Ć'),
            _ => None,
        };
        match composed {
            Some(letter) => {
                out.pop();
                out.push(letter);
            }
            None => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::to_cyrillic;

    #[test]
    fn alphabet_maps_letter_by_letter() {
        assert_eq!(
            to_cyrillic("a b c č ć d dž đ e f g h i j k l lj m n nj o p r s š t u v z ž"),
            "а б ц ч ћ д џ ђ е ф г х и ј к л љ м н њ о п р с ш т у в з ж"
        );
        assert_eq!(
            to_cyrillic("A B C Č Ć D DŽ Đ E F G H I J K L LJ M N NJ O P R S Š T U V Z Ž"),
            "А Б Ц Ч Ћ Д Џ Ђ Е Ф Г Х И Ј К Л Љ М Н Њ О П Р С Ш Т У В З Ж"
        );
    }

    #[test]
    fn digraphs_keep_case() {
        for (latin, cyrillic) in [
            ("Ljubljana", "Љубљана"),
            ("LJUBLJANA", "ЉУБЉАНА"),
            ("Njegoš", "Његош"),
            ("NJEGOŠ", "ЊЕГОШ"),
            ("Džemper i džep", "Џемпер и џеп"),
            ("DŽEP", "ЏЕП"),
            ("Đorđević", "Ђорђевић"),
            ("Prijavljeni ste", "Пријављени сте"),
        ] {
            assert_eq!(to_cyrillic(latin), cyrillic, "{latin}");
        }
    }

    #[test]
    fn split_digraphs_across_prefixes() {
        assert_eq!(to_cyrillic("injekcija"), "инјекција");
        assert_eq!(to_cyrillic("Nadživeti"), "Надживети");
        assert_eq!(to_cyrillic("podžanr"), "поджанр");
        assert_eq!(to_cyrillic("konjunkcija"), "конјункција");
        // The same letters elsewhere in a word are a digraph.
        assert_eq!(to_cyrillic("konj"), "коњ");
    }

    #[test]
    fn placeholders_codes_and_addresses_stay() {
        assert_eq!(
            to_cyrillic("Prikazano: {n} od {total}"),
            "Приказано: {n} од {total}"
        );
        assert_eq!(to_cyrillic("Preuzmi CSV i JSON"), "Преузми CSV и JSON");
        assert_eq!(
            to_cyrillic("Vidi https://example.org/ljubav?nj=1 sada"),
            "Види https://example.org/ljubav?nj=1 сада"
        );
        assert_eq!(to_cyrillic("Link 2G veza"), "Линк 2G веза");
        assert_eq!(to_cyrillic("NVO"), "НВО");
        assert_eq!(to_cyrillic("„<5“"), "„<5“");
        assert_eq!(to_cyrillic("nezatvoreno {abc"), "незатворено {abc");
    }

    #[test]
    fn decomposed_carons_are_composed_first() {
        assert_eq!(to_cyrillic("c\u{30C}as\u{30C}a"), "чаша");
        assert_eq!(to_cyrillic("kuc\u{301}a"), "кућа");
    }

    #[test]
    fn foreign_words_pass_through() {
        assert_eq!(to_cyrillic("Wikipedia i Yandex"), "Wikipedia и Yandex");
    }
}
