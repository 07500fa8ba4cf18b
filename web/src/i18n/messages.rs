//! The table of interface strings: one [`Msg`] per string, written in English, Albanian
//! and Serbian (Latin script). Serbian Cyrillic is generated from the Latin column, the
//! other languages fall back (see `i18n.rs`).
//!
//! Wording: "case" is "rast" / "slučaj"; "paralegal" stays "paralegal" in both. Counts
//! are written as "label: {n}" or "{n} min." so no language needs plural forms.
//! `{name}` is a placeholder filled in by `tf`; every language has the same ones.

macro_rules! messages {
    ($($(#[$doc:meta])* $name:ident { en: $en:literal, sq: $sq:literal, sr: $sr:literal $(,)? })*) => {
        /// One string of the interface. Its text in a language is [`t`](super::t).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Msg {
            $($(#[$doc])* $name,)*
        }

        impl Msg {
            /// Every message, in declaration order (so `ALL[m as usize] == m`).
            pub const ALL: &'static [Msg] = &[$(Msg::$name),*];

            /// The message's texts in English, Albanian and Serbian (Latin).
            pub(super) fn written(self) -> [&'static str; 3] {
                match self {
                    $(Msg::$name => [$en, $sq, $sr],)*
                }
            }
        }
    };
}

messages! {
    // ---- Page chrome and navigation
    Dashboard { en: "Supervisor dashboard", sq: "Paneli i mbikëqyrësit", sr: "Kontrolna tabla za supervizore" }
    SkipToContent { en: "Skip to content", sq: "Kalo te përmbajtja", sr: "Pređi na sadržaj" }
    MainNavigation { en: "Main navigation", sq: "Navigimi kryesor", sr: "Glavna navigacija" }
    Language { en: "Language", sq: "Gjuha", sr: "Jezik" }
    /// `{user}` is the user name, `{role}` the role's label.
    SignedInAs { en: "Signed in as {user} ({role})", sq: "Jeni kyçur si {user} ({role})", sr: "Prijavljeni ste kao {user} ({role})" }
    Cases { en: "Cases", sq: "Rastet", sr: "Slučajevi" }
    Case { en: "Case", sq: "Rasti", sr: "Slučaj" }
    Duplicates { en: "Possible duplicates", sq: "Dublikatat e mundshme", sr: "Mogući duplikati" }
    DonorSummary { en: "Donor summary", sq: "Përmbledhja për donatorët", sr: "Pregled za donatore" }
    Export { en: "Export", sq: "Eksporto", sr: "Izvoz" }
    Users { en: "Users", sq: "Përdoruesit", sr: "Korisnici" }
    Devices { en: "Devices", sq: "Pajisjet", sr: "Uređaji" }
    AuditTrail { en: "Audit trail", sq: "Gjurmët e auditimit", sr: "Revizijski trag" }

    // ---- Signing in and out
    SignIn { en: "Sign in", sq: "Kyçu", sr: "Prijavi se" }
    SignOut { en: "Sign out", sq: "Çkyçu", sr: "Odjavi se" }
    SignInTitle { en: "Sign in to the dashboard", sq: "Kyçuni në panel", sr: "Prijava na kontrolnu tablu" }
    Username { en: "Username", sq: "Emri i përdoruesit", sr: "Korisničko ime" }
    Password { en: "Password", sq: "Fjalëkalimi", sr: "Lozinka" }
    WrongCredentials { en: "Wrong username or password.", sq: "Emri i përdoruesit ose fjalëkalimi është i gabuar.", sr: "Pogrešno korisničko ime ili lozinka." }
    /// `{n}`: minutes until the next attempt is allowed.
    TooManyAttempts { en: "Too many attempts. Try again in {n} min.", sq: "Shumë përpjekje. Provoni sërish pas {n} min.", sr: "Previše pokušaja. Pokušajte ponovo za {n} min." }
    SignedOut { en: "You have signed out.", sq: "Jeni çkyçur.", sr: "Odjavili ste se." }
    SessionEnded { en: "Your session has ended. Please sign in again.", sq: "Seanca juaj ka përfunduar. Ju lutemi kyçuni sërish.", sr: "Vaša sesija je završena. Prijavite se ponovo." }
    SetPassword { en: "Set your password", sq: "Vendosni fjalëkalimin tuaj", sr: "Postavite lozinku" }
    OneTimeCode { en: "One-time code", sq: "Kodi njëpërdorimësh", sr: "Jednokratni kod" }
    NewPassword { en: "New password", sq: "Fjalëkalimi i ri", sr: "Nova lozinka" }
    RepeatPassword { en: "Repeat the password", sq: "Përsëritni fjalëkalimin", sr: "Ponovite lozinku" }
    PasswordsDiffer { en: "The two passwords are not the same.", sq: "Dy fjalëkalimet nuk përputhen.", sr: "Lozinke se ne poklapaju." }
    /// `{min}`: the least number of characters.
    PasswordTooShort { en: "The password needs at least {min} characters.", sq: "Fjalëkalimi duhet të ketë të paktën {min} karaktere.", sr: "Lozinka mora imati najmanje {min} znakova." }
    CodeInvalid { en: "This code is not valid or has expired.", sq: "Ky kod nuk është i vlefshëm ose ka skaduar.", sr: "Ovaj kod nije važeći ili je istekao." }
    PasswordGuessable { en: "This password is too easy to guess: use a longer phrase of several words.", sq: "Ky fjalëkalim gjendet lehtë: përdorni një frazë më të gjatë me disa fjalë.", sr: "Ovu lozinku je lako pogoditi: upotrebite dužu frazu od nekoliko reči." }
    SetPasswordWithCode { en: "Have a one-time code? Set your password", sq: "Keni një kod njëpërdorimësh? Vendosni fjalëkalimin", sr: "Imate jednokratni kod? Postavite lozinku" }
    SetPasswordHelp { en: "An administrator gave you a one-time code. Type it with the password you choose; the code then stops working.", sq: "Një administrator ju dha një kod njëpërdorimësh. Shkruajeni bashkë me fjalëkalimin që zgjidhni; pastaj kodi nuk vlen më.", sr: "Administrator vam je dao jednokratni kod. Unesite ga sa lozinkom koju birate; kod posle toga više ne važi." }
    BackToStart { en: "Back to the start page", sq: "Kthehu në faqen kryesore", sr: "Nazad na početnu stranu" }
    PasswordSet { en: "Your password is set. You can sign in now.", sq: "Fjalëkalimi u vendos. Tani mund të kyçeni.", sr: "Lozinka je postavljena. Sada se možete prijaviti." }

    // ---- Review statuses (codes in `status_msg`)
    StatusDraft { en: "Draft", sq: "Skicë", sr: "Nacrt" }
    StatusSubmitted { en: "Submitted", sq: "Dorëzuar", sr: "Podnet" }
    StatusNeedsChanges { en: "Needs changes", sq: "Kërkon ndryshime", sr: "Potrebne izmene" }
    StatusApproved { en: "Approved", sq: "Miratuar", sr: "Odobren" }
    StatusRejected { en: "Rejected", sq: "Refuzuar", sr: "Odbijen" }
    StatusClosed { en: "Closed", sq: "Mbyllur", sr: "Zatvoren" }

    // ---- Roles (codes in `role_msg`)
    RoleParalegal { en: "Paralegal", sq: "Paralegal", sr: "Paralegal" }
    RoleSupervisor { en: "Supervisor", sq: "Mbikëqyrës", sr: "Supervizor" }
    RoleAdmin { en: "Administrator", sq: "Administrator", sr: "Administrator" }

    // ---- Case list: filters, table, paging
    Filters { en: "Filters", sq: "Filtrat", sr: "Filteri" }
    Status { en: "Status", sq: "Statusi", sr: "Status" }
    Municipality { en: "Municipality", sq: "Komuna", sr: "Opština" }
    IssueType { en: "Issue type", sq: "Lloji i çështjes", sr: "Vrsta problema" }
    Urgency { en: "Urgency", sq: "Urgjenca", sr: "Hitnost" }
    Community { en: "Community", sq: "Komuniteti", sr: "Zajednica" }
    Gender { en: "Gender", sq: "Gjinia", sr: "Pol" }
    Paralegal { en: "Paralegal", sq: "Paralegali", sr: "Paralegal" }
    AssignedTo { en: "Assigned to", sq: "Caktuar për", sr: "Dodeljeno" }
    OnlyWithConflicts { en: "Only cases with conflicts", sq: "Vetëm rastet me konflikte", sr: "Samo slučajevi sa konfliktima" }
    DateFrom { en: "From", sq: "Nga", sr: "Od" }
    DateTo { en: "To", sq: "Deri më", sr: "Do" }
    SearchByName { en: "Search by name", sq: "Kërko sipas emrit", sr: "Pretraga po imenu" }
    Search { en: "Search", sq: "Kërko", sr: "Traži" }
    ApplyFilters { en: "Apply", sq: "Zbato", sr: "Primeni" }
    ClearFilters { en: "Clear filters", sq: "Pastro filtrat", sr: "Poništi filtere" }
    /// The blank option of a filter: no restriction.
    Any { en: "Any", sq: "Të gjitha", sr: "Sve" }
    NoCasesMatch { en: "No cases match these filters.", sq: "Asnjë rast nuk përputhet me këto filtra.", sr: "Nijedan slučaj ne odgovara ovim filterima." }
    NoCasesYet { en: "There are no cases yet.", sq: "Ende nuk ka raste.", sr: "Još nema slučajeva." }
    /// `{n}` cases on this page out of `{total}` that match.
    CasesShown { en: "Cases shown: {n} of {total}", sq: "Raste të shfaqura: {n} nga {total}", sr: "Prikazano slučajeva: {n} od {total}" }
    /// A page of a list: items `{from}` to `{to}` of `{total}`.
    RangeOf { en: "{from}–{to} of {total}", sq: "{from}–{to} nga {total}", sr: "{from}–{to} od {total}" }
    PreviousPage { en: "Previous page", sq: "Faqja e mëparshme", sr: "Prethodna strana" }
    NextPage { en: "Next page", sq: "Faqja tjetër", sr: "Sledeća strana" }
    Pages { en: "Pages", sq: "Faqet", sr: "Strane" }
    Name { en: "Name", sq: "Emri", sr: "Ime" }
    Created { en: "Created", sq: "Krijuar më", sr: "Kreirano" }
    LastChange { en: "Last change", sq: "Ndryshimi i fundit", sr: "Poslednja izmena" }
    Conflicts { en: "Conflicts", sq: "Konfliktet", sr: "Konflikti" }
    Open { en: "Open", sq: "Hap", sr: "Otvori" }

    // ---- Case page
    CaseNumber { en: "Case number", sq: "Numri i rastit", sr: "Broj slučaja" }
    Form { en: "Form", sq: "Formulari", sr: "Obrazac" }
    Team { en: "Team", sq: "Ekipi", sr: "Tim" }
    Field { en: "Field", sq: "Fusha", sr: "Polje" }
    Value { en: "Value", sq: "Vlera", sr: "Vrednost" }
    LastSetBy { en: "Last set by", sq: "Vendosur së fundi nga", sr: "Poslednji uneo" }
    When { en: "When", sq: "Kur", sr: "Kada" }
    Device { en: "Device", sq: "Pajisja", sr: "Uređaj" }
    Author { en: "Author", sq: "Autori", sr: "Autor" }
    NotAnswered { en: "Not answered", sq: "Pa përgjigje", sr: "Bez odgovora" }
    History { en: "History", sq: "Historiku", sr: "Istorija" }
    /// `{field}`: the field's label.
    FieldHistory { en: "History of “{field}”", sq: "Historiku i fushës “{field}”", sr: "Istorija polja „{field}“" }
    ShowHistory { en: "Show history", sq: "Shfaq historikun", sr: "Prikaži istoriju" }
    NoHistory { en: "No earlier values.", sq: "Nuk ka vlera të mëparshme.", sr: "Nema ranijih vrednosti." }
    /// `{field}`: the field's label.
    ConflictIn { en: "Conflict in “{field}”", sq: "Konflikt në fushën “{field}”", sr: "Konflikt u polju „{field}“" }
    ConflictExplain { en: "Two or more people changed this field at the same time. Keep one of the values or enter a new one.", sq: "Dy ose më shumë persona e ndryshuan këtë fushë në të njëjtën kohë. Mbani njërën nga vlerat ose shkruani një vlerë të re.", sr: "Dve ili više osoba su istovremeno izmenile ovo polje. Zadržite jednu od vrednosti ili unesite novu." }
    ResolveWithThisValue { en: "Keep this value", sq: "Mbaje këtë vlerë", sr: "Zadrži ovu vrednost" }
    NewValue { en: "New value", sq: "Vlerë e re", sr: "Nova vrednost" }
    ResolveWithNewValue { en: "Save the new value", sq: "Ruaje vlerën e re", sr: "Sačuvaj novu vrednost" }
    Comments { en: "Comments", sq: "Komentet", sr: "Komentari" }
    Comment { en: "Comment", sq: "Komenti", sr: "Komentar" }
    AddComment { en: "Add comment", sq: "Shto koment", sr: "Dodaj komentar" }
    NoComments { en: "No comments yet.", sq: "Ende nuk ka komente.", sr: "Još nema komentara." }
    FollowUpActions { en: "Follow-up actions", sq: "Veprimet pasuese", sr: "Naredne radnje" }
    NoFollowUpActions { en: "No follow-up actions yet.", sq: "Ende nuk ka veprime pasuese.", sr: "Još nema narednih radnji." }
    /// Column of buttons and links in a table.
    Actions { en: "Actions", sq: "Veprimet", sr: "Radnje" }
    Review { en: "Review", sq: "Shqyrtimi", sr: "Pregled" }
    Approve { en: "Approve", sq: "Mirato", sr: "Odobri" }
    /// The "needs changes" review button.
    RequestChanges { en: "Send back for changes", sq: "Kthe për ndryshime", sr: "Vrati na izmene" }
    Reject { en: "Reject", sq: "Refuzo", sr: "Odbij" }
    ReviewNote { en: "Note to the paralegal", sq: "Shënim për paralegalin", sr: "Napomena za paralegala" }
    ReviewNoteNeeded { en: "Please write what needs to change.", sq: "Ju lutemi shkruani çfarë duhet ndryshuar.", sr: "Napišite šta treba izmeniti." }
    Reassign { en: "Reassign", sq: "Ricakto", sr: "Dodeli drugom" }
    AssignTo { en: "Assign to", sq: "Cakto për", sr: "Dodeli" }
    BackToList { en: "Back to the list", sq: "Kthehu te lista", sr: "Nazad na listu" }
    LinkedCases { en: "Linked cases", sq: "Rastet e lidhura", sr: "Povezani slučajevi" }

    // ---- Duplicate hints
    DuplicatesExplain { en: "Cases that probably describe the same person: the same name (ignoring case, accents and alphabet), year of birth and municipality.", sq: "Raste që ndoshta i përkasin të njëjtit person: i njëjti emër (pa marrë parasysh shkronjat e mëdha, shenjat diakritike dhe alfabetin), viti i lindjes dhe komuna.", sr: "Slučajevi koji verovatno opisuju istu osobu: isto ime (bez obzira na velika i mala slova, dijakritičke znakove i pismo), ista godina rođenja i opština." }
    LinkCases { en: "Link these cases", sq: "Lidhi këto raste", sr: "Poveži ove slučajeve" }
    Linked { en: "Linked", sq: "Të lidhura", sr: "Povezani" }
    NoDuplicates { en: "No possible duplicates found.", sq: "Nuk u gjet asnjë dublikatë e mundshme.", sr: "Nisu pronađeni mogući duplikati." }

    // ---- Users and devices (admin)
    AddUser { en: "Add user", sq: "Shto përdorues", sr: "Dodaj korisnika" }
    User { en: "User", sq: "Përdoruesi", sr: "Korisnik" }
    Role { en: "Role", sq: "Roli", sr: "Uloga" }
    Active { en: "Active", sq: "Aktiv", sr: "Aktivan" }
    Disabled { en: "Disabled", sq: "Çaktivizuar", sr: "Onemogućen" }
    Disable { en: "Disable", sq: "Çaktivizo", sr: "Onemogući" }
    ResetPassword { en: "Reset password", sq: "Rivendos fjalëkalimin", sr: "Resetuj lozinku" }
    /// Shown once after adding a user or resetting a password: `{user}`, `{time}`.
    CodeShownOnce { en: "Give this code to {user}. It is shown only once and expires at {time}.", sq: "Jepjani këtë kod përdoruesit {user}. Shfaqet vetëm një herë dhe skadon më {time}.", sr: "Dajte ovaj kod korisniku {user}. Prikazuje se samo jednom i ističe u {time}." }
    UserAdded { en: "User {user} added.", sq: "Përdoruesi {user} u shtua.", sr: "Korisnik {user} je dodat." }
    UserDisabled { en: "User {user} is disabled; their sessions have ended.", sq: "Përdoruesi {user} u çaktivizua; seancat e këtij përdoruesi u mbyllën.", sr: "Korisnik {user} je onemogućen; sesije tog naloga su završene." }
    Enrolled { en: "Enrolled", sq: "Regjistruar më", sr: "Registrovan" }
    LastSync { en: "Last sync", sq: "Sinkronizimi i fundit", sr: "Poslednja sinhronizacija" }
    Never { en: "Never", sq: "Asnjëherë", sr: "Nikad" }
    Revoke { en: "Revoke", sq: "Revoko", sr: "Opozovi" }
    Revoked { en: "Revoked", sq: "Revokuar", sr: "Opozvan" }
    DeviceRevoked { en: "The device is revoked and can no longer sync.", sq: "Pajisja u revokua dhe nuk mund të sinkronizohet më.", sr: "Uređaj je opozvan i više ne može da se sinhronizuje." }
    NoDevices { en: "No devices enrolled.", sq: "Asnjë pajisje e regjistruar.", sr: "Nema registrovanih uređaja." }

    // ---- Audit trail
    Time { en: "Time", sq: "Koha", sr: "Vreme" }
    DeviceOrSession { en: "Device or session", sq: "Pajisja ose seanca", sr: "Uređaj ili sesija" }
    Action { en: "Action", sq: "Veprimi", sr: "Radnja" }
    Scope { en: "Cases or scope", sq: "Rastet ose fushëveprimi", sr: "Slučajevi ili obuhvat" }
    Address { en: "Address", sq: "Adresa", sr: "Adresa" }
    NoAuditEntries { en: "No entries match.", sq: "Asnjë regjistrim nuk përputhet.", sr: "Nema odgovarajućih zapisa." }
    AuditSignIn { en: "Sign-in", sq: "Kyçje", sr: "Prijava" }
    AuditSignInFailed { en: "Failed sign-in", sq: "Kyçje e dështuar", sr: "Neuspela prijava" }
    AuditSignOut { en: "Sign-out", sq: "Çkyçje", sr: "Odjava" }
    AuditViewCase { en: "Viewed a case", sq: "Shikoi një rast", sr: "Pregledan slučaj" }
    AuditExport { en: "Export", sq: "Eksport", sr: "Izvoz" }
    AuditReview { en: "Review decision", sq: "Vendim shqyrtimi", sr: "Odluka o pregledu" }
    AuditResolve { en: "Conflict resolved", sq: "Konflikt i zgjidhur", sr: "Rešen konflikt" }
    AuditAssign { en: "Assignment", sq: "Caktim", sr: "Dodela" }
    AuditComment { en: "Comment", sq: "Koment", sr: "Komentar" }
    AuditLink { en: "Cases linked", sq: "Raste të lidhura", sr: "Povezani slučajevi" }
    AuditUserAdmin { en: "User administration", sq: "Administrimi i përdoruesve", sr: "Administracija korisnika" }
    AuditDeviceAdmin { en: "Device administration", sq: "Administrimi i pajisjeve", sr: "Administracija uređaja" }

    // ---- Exports
    DownloadCsv { en: "Download CSV", sq: "Shkarko CSV", sr: "Preuzmi CSV" }
    DownloadJson { en: "Download JSON", sq: "Shkarko JSON", sr: "Preuzmi JSON" }
    ExportScope { en: "The export holds the cases of the current filter.", sq: "Eksporti përmban rastet e filtrit aktual.", sr: "Izvoz sadrži slučajeve prema trenutnom filteru." }
    ColumnHeaders { en: "Column headers", sq: "Titujt e kolonave", sr: "Zaglavlja kolona" }
    HeadersAsLabels { en: "Field names in this language", sq: "Emrat e fushave në këtë gjuhë", sr: "Nazivi polja na ovom jeziku" }
    HeadersAsCodes { en: "Field codes", sq: "Kodet e fushave", sr: "Šifre polja" }
    IncludeSensitive { en: "Include sensitive fields", sq: "Përfshi fushat e ndjeshme", sr: "Uključi osetljiva polja" }
    SensitiveExplain { en: "Sensitive fields (names, contact details, narratives …) are left out unless you tick them.", sq: "Fushat e ndjeshme (emrat, kontaktet, përshkrimet …) nuk përfshihen nëse nuk i zgjidhni.", sr: "Osetljiva polja (imena, kontakt podaci, opisi …) izostavljaju se ako ih ne označite." }
    SensitiveNotAllowed { en: "Your role does not allow exporting sensitive fields.", sq: "Roli juaj nuk lejon eksportimin e fushave të ndjeshme.", sr: "Vaša uloga ne dozvoljava izvoz osetljivih polja." }

    // ---- Donor summary
    ByMunicipality { en: "By municipality", sq: "Sipas komunës", sr: "Po opštinama" }
    ByCommunity { en: "By community", sq: "Sipas komunitetit", sr: "Po zajednicama" }
    ByGender { en: "By gender", sq: "Sipas gjinisë", sr: "Po polu" }
    ByIssueType { en: "By issue type", sq: "Sipas llojit të çështjes", sr: "Po vrsti problema" }
    ByStatus { en: "By status", sq: "Sipas statusit", sr: "Po statusu" }
    ByMonth { en: "By month", sq: "Sipas muajit", sr: "Po mesecima" }
    Month { en: "Month", sq: "Muaji", sr: "Mesec" }
    Count { en: "Count", sq: "Numri", sr: "Broj" }
    Total { en: "Total", sq: "Gjithsej", sr: "Ukupno" }
    NotRecorded { en: "Not recorded", sq: "Pa të dhëna", sr: "Nije upisano" }
    SuppressedExplain { en: "Counts under 5 are shown as “<5” so that no client can be singled out.", sq: "Numrat nën 5 shfaqen si “<5”, që asnjë klient të mos mund të identifikohet.", sr: "Brojevi manji od 5 prikazani su kao „<5“ kako nijedan klijent ne bi mogao da bude prepoznat." }
    DownloadSummaryCsv { en: "Download the summary as CSV", sq: "Shkarko përmbledhjen si CSV", sr: "Preuzmi pregled kao CSV" }

    // ---- Buttons and form words
    Save { en: "Save", sq: "Ruaj", sr: "Sačuvaj" }
    Cancel { en: "Cancel", sq: "Anulo", sr: "Otkaži" }
    Confirm { en: "Confirm", sq: "Konfirmo", sr: "Potvrdi" }
    Print { en: "Print", sq: "Printo", sr: "Štampaj" }
    /// Marks a required field (read by screen readers, shown as a star).
    Required { en: "required", sq: "e detyrueshme", sr: "obavezno" }
    /// The blank option of a choice field.
    ChooseOne { en: "— choose —", sq: "— zgjidhni —", sr: "— izaberite —" }

    // ---- Notices after an action
    Saved { en: "Saved.", sq: "U ruajt.", sr: "Sačuvano." }
    CaseApproved { en: "The case is approved.", sq: "Rasti u miratua.", sr: "Slučaj je odobren." }
    CaseSentBack { en: "The case was sent back to the paralegal.", sq: "Rasti iu kthye paralegalit.", sr: "Slučaj je vraćen paralegalu." }
    CaseRejected { en: "The case is rejected.", sq: "Rasti u refuzua.", sr: "Slučaj je odbijen." }
    ConflictResolved { en: "The conflict is resolved.", sq: "Konflikti u zgjidh.", sr: "Konflikt je rešen." }
    /// `{user}`: the new assignee.
    CaseReassigned { en: "The case is now assigned to {user}.", sq: "Rasti tani i është caktuar përdoruesit {user}.", sr: "Slučaj je sada dodeljen korisniku {user}." }
    CommentAdded { en: "Comment added.", sq: "Komenti u shtua.", sr: "Komentar je dodat." }
    CasesLinked { en: "The cases are linked.", sq: "Rastet u lidhën.", sr: "Slučajevi su povezani." }

    // ---- Field app (`intake app`): unlocking, locking, the paralegal's own cases
    FieldApp { en: "Field app", sq: "Aplikacioni në terren", sr: "Aplikacija za teren" }
    UnlockTitle { en: "Unlock your cases", sq: "Hapni rastet tuaja", sr: "Otključajte svoje slučajeve" }
    Unlock { en: "Unlock", sq: "Hap", sr: "Otključaj" }
    Passphrase { en: "Passphrase", sq: "Fjalëkalimi i gjatë", sr: "Lozinka za skladište" }
    RepeatPassphrase { en: "Repeat the passphrase", sq: "Përsëritni fjalëkalimin e gjatë", sr: "Ponovite lozinku za skladište" }
    NewStoreTitle { en: "Create the store for your cases", sq: "Krijoni hapësirën për rastet tuaja", sr: "Napravite skladište za svoje slučajeve" }
    NewStoreHelp { en: "Your cases are kept encrypted on this device. Choose a passphrase of several words; without it nobody, not even you, can read them again.", sq: "Rastet tuaja ruhen të enkriptuara në këtë pajisje. Zgjidhni një fjalëkalim me disa fjalë; pa të askush, as ju, nuk mund t'i lexojë më.", sr: "Vaši slučajevi se čuvaju šifrovani na ovom uređaju. Izaberite lozinku od nekoliko reči; bez nje ih niko, ni vi, više ne može pročitati." }
    CreateStore { en: "Create", sq: "Krijo", sr: "Napravi" }
    WrongPassphrase { en: "Wrong passphrase. Nothing was changed; try again.", sq: "Fjalëkalim i gabuar. Asgjë nuk u ndryshua; provoni sërish.", sr: "Pogrešna lozinka. Ništa nije promenjeno; pokušajte ponovo." }
    /// `{min}`: the least number of characters.
    PassphraseTooShort { en: "The passphrase needs at least {min} characters.", sq: "Fjalëkalimi duhet të ketë të paktën {min} karaktere.", sr: "Lozinka mora imati najmanje {min} znakova." }
    PassphraseRepeats { en: "The passphrase repeats the same few characters: use several different words.", sq: "Fjalëkalimi përsërit të njëjtat pak karaktere: përdorni disa fjalë të ndryshme.", sr: "Lozinka ponavlja istih nekoliko znakova: upotrebite nekoliko različitih reči." }
    PassphraseRun { en: "The passphrase is a run of neighbouring keys or letters (like 123456 or abcdef): use several words.", sq: "Fjalëkalimi është një varg tastesh ose shkronjash fqinje (si 123456 ose abcdef): përdorni disa fjalë.", sr: "Lozinka je niz susednih tastera ili slova (kao 123456 ili abvgde): upotrebite nekoliko reči." }
    PassphrasesDiffer { en: "The two passphrases are not the same. Nothing was created.", sq: "Dy fjalëkalimet nuk përputhen. Asgjë nuk u krijua.", sr: "Lozinke se ne poklapaju. Ništa nije napravljeno." }
    StoreUnusable { en: "The store cannot be opened: {why}", sq: "Hapësira nuk mund të hapet: {why}", sr: "Skladište ne može da se otvori: {why}" }
    LockNow { en: "Lock now", sq: "Kyç tani", sr: "Zaključaj sada" }
    AppLocked { en: "The app is locked. Type your passphrase to continue.", sq: "Aplikacioni është kyçur. Shkruani fjalëkalimin për të vazhduar.", sr: "Aplikacija je zaključana. Unesite lozinku da biste nastavili." }
    /// `{n}`: minutes without use.
    LockedIdle { en: "The app locked itself after {n} min. without use.", sq: "Aplikacioni u kyç vetë pas {n} min. pa përdorim.", sr: "Aplikacija se sama zaključala posle {n} min. bez korišćenja." }
    LaunchLinkUsed { en: "This link works only once. Start the app again to get a new one.", sq: "Kjo lidhje vlen vetëm një herë. Nisni sërish aplikacionin për një lidhje të re.", sr: "Ovaj link važi samo jednom. Ponovo pokrenite aplikaciju da dobijete novi." }
    MyCases { en: "My cases", sq: "Rastet e mia", sr: "Moji slučajevi" }
    NewCase { en: "New case", sq: "Rast i ri", sr: "Novi slučaj" }
    EditCase { en: "Edit", sq: "Ndrysho", sr: "Izmeni" }
    NotSynced { en: "Not synced yet", sq: "Ende pa sinkronizuar", sr: "Još nije sinhronizovano" }
    HasConflict { en: "Conflict", sq: "Konflikt", sr: "Konflikt" }
    SupervisorNote { en: "Supervisor's note", sq: "Shënimi i mbikëqyrësit", sr: "Napomena supervizora" }
    SubmitForReview { en: "Submit for review", sq: "Dorëzo për shqyrtim", sr: "Pošalji na pregled" }
    /// `{fields}`: the labels of the empty required fields, comma-separated.
    MissingToSubmit { en: "The case cannot be submitted yet; these required fields are empty: {fields}", sq: "Rasti nuk mund të dorëzohet ende; këto fusha të detyrueshme janë bosh: {fields}", sr: "Slučaj još ne može da se pošalje; ova obavezna polja su prazna: {fields}" }
    CaseSubmitted { en: "The case is submitted for review.", sq: "Rasti u dorëzua për shqyrtim.", sr: "Slučaj je poslat na pregled." }
    AddFollowUp { en: "Add a follow-up visit", sq: "Shto një vizitë pasuese", sr: "Dodaj narednu posetu" }
    FollowUpAdded { en: "Follow-up added.", sq: "Veprimi pasues u shtua.", sr: "Naredna radnja je dodata." }
    /// `{author}` and `{time}` of one value of a conflicting field.
    ValueBy { en: "by {author}, {time}", sq: "nga {author}, {time}", sr: "uneo {author}, {time}" }
    UnknownAuthor { en: "unknown", sq: "i panjohur", sr: "nepoznat" }

    NotSavedYet { en: "The app had locked itself before your last changes arrived, so they are not saved yet. Unlock, and they are kept.", sq: "Aplikacioni ishte kyçur vetë para se të arrinin ndryshimet tuaja të fundit, prandaj ato ende nuk janë ruajtur. Hapeni dhe ato ruhen.", sr: "Aplikacija se sama zaključala pre nego što su stigle vaše poslednje izmene, pa još nisu sačuvane. Otključajte i one se zadržavaju." }
    SaveThemNow { en: "Your last changes are not saved yet. Save them now.", sq: "Ndryshimet tuaja të fundit ende nuk janë ruajtur. Ruajini tani.", sr: "Vaše poslednje izmene još nisu sačuvane. Sačuvajte ih sada." }

    // ---- Field app: sync, enrolment, device
    Sync { en: "Sync", sq: "Sinkronizimi", sr: "Sinhronizacija" }
    SyncNow { en: "Sync now", sq: "Sinkronizo tani", sr: "Sinhronizuj sada" }
    SyncRunning { en: "Syncing…", sq: "Po sinkronizohet…", sr: "Sinhronizacija u toku…" }
    /// Progress of a running sync: records sent and received, kilobytes moved.
    SyncProgress { en: "Sent: {sent} · received: {received} · {kb} KB", sq: "Dërguar: {sent} · marrë: {received} · {kb} KB", sr: "Poslato: {sent} · primljeno: {received} · {kb} KB" }
    SyncDone { en: "Sync finished.", sq: "Sinkronizimi përfundoi.", sr: "Sinhronizacija je završena." }
    /// `{n}`: how many cases the organisation erased (dropped here, unsynced edits too).
    SyncErased { en: "Cases erased by your organisation: {n}. They were removed from this device, with any edits not synced yet.", sq: "Raste të fshira nga organizata juaj: {n}. U hoqën nga kjo pajisje, bashkë me ndryshimet ende pa sinkronizuar.", sr: "Slučajevi koje je vaša organizacija obrisala: {n}. Uklonjeni su sa ovog uređaja, zajedno sa izmenama koje još nisu sinhronizovane." }
    LastSyncFailed { en: "The last sync did not finish", sq: "Sinkronizimi i fundit nuk përfundoi", sr: "Poslednja sinhronizacija nije završena" }
    SyncOffline { en: "The server cannot be reached (no network, or the server is down). Your cases are safe on this device; the app tries again later.", sq: "Serveri nuk mund të arrihet (pa rrjet, ose serveri nuk punon). Rastet tuaja janë të sigurta në këtë pajisje; aplikacioni provon sërish më vonë.", sr: "Server nije dostupan (nema mreže ili server ne radi). Vaši slučajevi su bezbedni na ovom uređaju; aplikacija pokušava ponovo kasnije." }
    SyncTemporary { en: "The connection broke or the server is busy. What was already sent is kept; the app tries again later.", sq: "Lidhja u ndërpre ose serveri është i zënë. Çfarë është dërguar ruhet; aplikacioni provon sërish më vonë.", sr: "Veza je prekinuta ili je server zauzet. Ono što je već poslato je sačuvano; aplikacija pokušava ponovo kasnije." }
    SyncRevoked { en: "This device may no longer sync: it was revoked or your account disabled. Ask your administrator.", sq: "Kjo pajisje nuk mund të sinkronizohet më: është revokuar ose llogaria juaj është çaktivizuar. Pyesni administratorin.", sr: "Ovaj uređaj više ne može da se sinhronizuje: opozvan je ili je vaš nalog onemogućen. Obratite se administratoru." }
    SyncUpdateApp { en: "The server needs a newer version of this app. Update it, then sync again.", sq: "Serveri kërkon një version më të ri të aplikacionit. Përditësojeni, pastaj sinkronizoni sërish.", sr: "Server zahteva noviju verziju aplikacije. Ažurirajte je, pa ponovo sinhronizujte." }
    /// `{why}`: the server's own reason.
    SyncRefused { en: "The server refused the sync: {why}", sq: "Serveri e refuzoi sinkronizimin: {why}", sr: "Server je odbio sinhronizaciju: {why}" }
    NotEnrolled { en: "This device is not enrolled with a server yet.", sq: "Kjo pajisje ende nuk është regjistruar në një server.", sr: "Ovaj uređaj još nije registrovan na serveru." }
    EnrolFailed { en: "Enrolment failed: the code is wrong, already used or expired.", sq: "Regjistrimi dështoi: kodi është i gabuar, i përdorur ose i skaduar.", sr: "Registracija nije uspela: kod je pogrešan, već iskorišćen ili je istekao." }
    /// `{why}`: what the store said.
    StoreFailed { en: "The store on this device failed: {why}", sq: "Hapësira në këtë pajisje dështoi: {why}", sr: "Skladište na ovom uređaju nije uspelo: {why}" }
    EnrolDevice { en: "Enrol this device", sq: "Regjistro këtë pajisje", sr: "Registruj ovaj uređaj" }
    ServerAddress { en: "Server address", sq: "Adresa e serverit", sr: "Adresa servera" }
    DeviceName { en: "Name of this device", sq: "Emri i kësaj pajisjeje", sr: "Naziv ovog uređaja" }
    DeviceEnrolled { en: "The device is enrolled.", sq: "Pajisja u regjistrua.", sr: "Uređaj je registrovan." }
    ThisDevice { en: "This device", sq: "Kjo pajisje", sr: "Ovaj uređaj" }
    Server { en: "Server", sq: "Serveri", sr: "Server" }
    DeviceNumber { en: "Device number", sq: "Numri i pajisjes", sr: "Broj uređaja" }
    StorePath { en: "Store location", sq: "Vendndodhja e hapësirës", sr: "Lokacija skladišta" }
    UnsyncedCount { en: "Cases not synced yet", sq: "Raste ende pa sinkronizuar", sr: "Slučajevi još nesinhronizovani" }

    // ---- Field app: quick wipe
    QuickWipe { en: "Quick wipe", sq: "Fshirje e shpejtë", sr: "Brzo brisanje" }
    /// `{n}`: cases not synced yet, which are lost for good.
    WipeExplain { en: "Everything this app keeps on this device is destroyed at once: every case, the store and its key. Cases not synced yet: {n}; they cannot be recovered. This cannot be undone.", sq: "Gjithçka që ky aplikacion mban në këtë pajisje shkatërrohet menjëherë: çdo rast, hapësira dhe çelësi i saj. Raste ende pa sinkronizuar: {n}; ato nuk mund të rikthehen. Ky veprim nuk kthehet mbrapsht.", sr: "Sve što ova aplikacija čuva na ovom uređaju odmah se uništava: svi slučajevi, skladište i njegov ključ. Slučajevi još nesinhronizovani: {n}; oni se ne mogu povratiti. Ovo se ne može poništiti." }
    WipeNow { en: "Destroy everything now", sq: "Shkatërro gjithçka tani", sr: "Uništi sve odmah" }
    Wiped { en: "Everything the app kept on this device has been destroyed.", sq: "Gjithçka që aplikacioni mbante në këtë pajisje u shkatërrua.", sr: "Sve što je aplikacija čuvala na ovom uređaju je uništeno." }

    // ---- Dashboard: erasing a record (admins)
    EraseRecord { en: "Erase a case", sq: "Fshi një rast", sr: "Obriši slučaj" }
    EraseExplain { en: "Erasing a case removes it for good: its answers, history, comments and links. Devices that hold it drop it on their next sync, with any edits not synced yet. Backups keep it until they are rotated out. The audit trail keeps who erased which case, when and why. This cannot be undone.", sq: "Fshirja e një rasti e heq përgjithmonë: përgjigjet, historinë, komentet dhe lidhjet e tij. Pajisjet që e mbajnë e heqin në sinkronizimin e ardhshëm, bashkë me ndryshimet ende pa sinkronizuar. Kopjet rezervë e mbajnë derisa të zëvendësohen. Gjurmët e auditimit ruajnë kush e fshiu cilin rast, kur dhe pse. Ky veprim nuk kthehet mbrapsht.", sr: "Brisanje slučaja uklanja ga zauvek: odgovore, istoriju, komentare i veze. Uređaji koji ga čuvaju uklanjaju ga pri sledećoj sinhronizaciji, zajedno sa izmenama koje još nisu sinhronizovane. Rezervne kopije ga čuvaju dok ne budu zamenjene. Revizijski trag čuva ko je obrisao koji slučaj, kada i zašto. Ovo se ne može poništiti." }
    CaseId { en: "Case ID", sq: "ID e rastit", sr: "ID slučaja" }
    ConfirmCaseId { en: "Type the case ID again to confirm", sq: "Shkruani sërish ID-në e rastit për ta konfirmuar", sr: "Ponovo unesite ID slučaja da potvrdite" }
    EraseReason { en: "Reason (kept in the audit trail)", sq: "Arsyeja (ruhet në gjurmët e auditimit)", sr: "Razlog (čuva se u revizijskom tragu)" }
    EraseForGood { en: "Erase for good", sq: "Fshije përgjithmonë", sr: "Obriši zauvek" }
    /// `{id}`: the erased case's id.
    CaseErased { en: "The case {id} was erased.", sq: "Rasti {id} u fshi.", sr: "Slučaj {id} je obrisan." }
    EraseMismatch { en: "The two case IDs do not match: nothing was erased.", sq: "Dy ID-të e rastit nuk përputhen: asgjë nuk u fshi.", sr: "Dva ID-a slučaja se ne poklapaju: ništa nije obrisano." }

    // ---- Errors
    ErrorTitle { en: "Something went wrong", sq: "Diçka shkoi keq", sr: "Nešto nije u redu" }
    NotFound { en: "This page or case does not exist, or you may not see it.", sq: "Kjo faqe ose ky rast nuk ekziston, ose nuk keni qasje në të.", sr: "Ova strana ili slučaj ne postoji, ili nemate pristup." }
    Forbidden { en: "You are not allowed to do this.", sq: "Nuk keni leje për këtë veprim.", sr: "Nemate dozvolu za ovu radnju." }
    FormExpired { en: "This form has expired. Please reload the page and try again.", sq: "Ky formular ka skaduar. Ringarkoni faqen dhe provoni sërish.", sr: "Ovaj obrazac je istekao. Ponovo učitajte stranu i pokušajte opet." }
    ChangedMeanwhile { en: "Someone else changed this case meanwhile. Please check it and try again.", sq: "Dikush tjetër e ndryshoi këtë rast ndërkohë. Kontrollojeni dhe provoni sërish.", sr: "Neko drugi je u međuvremenu izmenio ovaj slučaj. Proverite ga i pokušajte ponovo." }
    AssigneeInvalid { en: "This person cannot be assigned: they must be active and in the case's team.", sq: "Ky person nuk mund të caktohet: duhet të jetë aktiv dhe në ekipin e rastit.", sr: "Ova osoba ne može biti dodeljena: mora biti aktivna i u timu slučaja." }
    TransitionNotAllowed { en: "This status change is not allowed.", sq: "Ky ndryshim statusi nuk lejohet.", sr: "Ova promena statusa nije dozvoljena." }
    CheckFields { en: "Please check the marked fields.", sq: "Ju lutemi kontrolloni fushat e shënuara.", sr: "Proverite označena polja." }
    ServerError { en: "The server could not finish this. Please try again later.", sq: "Serveri nuk mundi ta përfundojë këtë. Provoni sërish më vonë.", sr: "Server nije mogao da završi ovu radnju. Pokušajte ponovo kasnije." }
    StorageFull { en: "The server's storage is full: nothing was saved. Tell your administrator, and try again once space is freed.", sq: "Hapësira e ruajtjes së serverit është plot: asgjë nuk u ruajt. Njoftoni administratorin dhe provoni sërish kur të lirohet hapësirë.", sr: "Skladište servera je puno: ništa nije sačuvano. Obavestite administratora i pokušajte ponovo kada se oslobodi prostor." }

    // ---- Lost phones (issue 12): wipe orders, the lock after N days, passphrase strength
    RevokeAndWipe { en: "Revoke and wipe", sq: "Revoko dhe fshi", sr: "Opozovi i obriši" }
    OrderWipe { en: "Order a wipe", sq: "Urdhëro fshirjen", sr: "Naloži brisanje" }
    WipeOrdered { en: "Wipe ordered", sq: "Fshirja u urdhërua", sr: "Brisanje naloženo" }
    WipeSent { en: "Wipe sent", sq: "Fshirja u dërgua", sr: "Brisanje poslato" }
    DeviceWiped { en: "Wiped", sq: "Fshirë", sr: "Obrisan" }
    RemoteWiped { en: "This device was revoked and your administrator ordered its data destroyed: every case this app kept on it has been destroyed.", sq: "Kjo pajisje u revokua dhe administratori urdhëroi shkatërrimin e të dhënave: çdo rast që ky aplikacion mbante në të u shkatërrua.", sr: "Ovaj uređaj je opozvan i administrator je naložio uništavanje podataka: svi slučajevi koje je aplikacija čuvala na njemu su uništeni." }
    /// `{days}`: the server's limit.
    SyncLocked { en: "No successful sync for {days} days: connect and sync to unlock.", sq: "Asnjë sinkronizim i suksesshëm për {days} ditë: lidhuni dhe sinkronizoni për ta zhbllokuar.", sr: "Nema uspešne sinhronizacije {days} dana: povežite se i sinhronizujte da otključate." }
    PassphraseGuessable { en: "This passphrase is too easy to guess. Use four or more random words that do not form a phrase (for example: river candle orbit meadow), not names, dates or your user name.", sq: "Ky fjalëkalim gjendet shumë lehtë. Përdorni katër ose më shumë fjalë të rastësishme që nuk formojnë një shprehje (për shembull: lumë qiri orbitë livadh), jo emra, data ose emrin tuaj të përdoruesit.", sr: "Ovu lozinku je previše lako pogoditi. Upotrebite četiri ili više nasumičnih reči koje ne čine izraz (na primer: reka sveća orbita livada), ne imena, datume ili vaše korisničko ime." }

    // ---- Clock skew (issue 13): a device time beside the server's receipt
    /// `{when}`: the server's time, "2026-11-28 15:24 UTC".
    ReceivedAt { en: "received by the server {when}", sq: "marrë nga serveri {when}", sr: "server primio {when}" }
    /// `{amount}`: a rough duration (`RoughYears` …).
    ClockAhead { en: "device clock was wrong: at least {amount} ahead", sq: "ora e pajisjes ishte gabim: të paktën {amount} përpara", sr: "sat uređaja je bio pogrešan: bar {amount} unapred" }
    ClockBehind { en: "device clock was wrong: at least {amount} behind", sq: "ora e pajisjes ishte gabim: të paktën {amount} prapa", sr: "sat uređaja je bio pogrešan: bar {amount} unazad" }
    ThisClockAhead { en: "This device's clock is at least {amount} ahead of the server's: the times it records are wrong. Set the date and time in the phone's settings.", sq: "Ora e kësaj pajisjeje është të paktën {amount} përpara orës së serverit: kohët që regjistron janë gabim. Rregulloni datën dhe orën te cilësimet e telefonit.", sr: "Sat ovog uređaja je bar {amount} ispred sata servera: vremena koja beleži su pogrešna. Podesite datum i vreme u podešavanjima telefona." }
    ThisClockBehind { en: "This device's clock is at least {amount} behind the server's: the times it records are wrong. Set the date and time in the phone's settings.", sq: "Ora e kësaj pajisjeje është të paktën {amount} prapa orës së serverit: kohët që regjistron janë gabim. Rregulloni datën dhe orën te cilësimet e telefonit.", sr: "Sat ovog uređaja je bar {amount} iza sata servera: vremena koja beleži su pogrešna. Podesite datum i vreme u podešavanjima telefona." }
    RoughYears { en: "{n} yr.", sq: "{n} vj.", sr: "{n} god." }
    RoughDays { en: "{n} d.", sq: "{n} ditë", sr: "{n} d." }
    RoughHours { en: "{n} h", sq: "{n} orë", sr: "{n} č." }
}
