//! The TUI's whole state: a plain struct, changed only by `update` and read by `view`.

use crate::inventory::{Inventory, LinkState};
use crate::plan::{Hints, Plan};
use crate::progress::Outcome;
use std::collections::BTreeMap;
use tappaas_site::Site;

/// The screens, in the order the user walks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Screen {
    /// Keyboard layout.
    Welcome,
    /// What the probe found.
    Hardware,
    /// What this machine becomes.
    Role,
    /// Disk roles.
    Disks,
    /// NIC roles, host name and address.
    Network,
    /// Site names and credentials.
    Site,
    /// The plan, as `tappaas-installer plan` prints it.
    Summary,
    /// Type the host name to go ahead.
    Confirm,
    /// The install runs.
    Progress,
    /// The install ended.
    Done,
    /// An install of this live session was interrupted: resume it or start afresh. Shown
    /// before the welcome screen only then, so it is not one of the numbered steps.
    Resume,
}

impl Screen {
    /// Every screen in order.
    pub const ALL: [Screen; 10] = [
        Screen::Welcome,
        Screen::Hardware,
        Screen::Role,
        Screen::Disks,
        Screen::Network,
        Screen::Site,
        Screen::Summary,
        Screen::Confirm,
        Screen::Progress,
        Screen::Done,
    ];

    /// The title shown at the top.
    pub fn title(self) -> &'static str {
        match self {
            Screen::Welcome => "Welcome",
            Screen::Hardware => "This machine",
            Screen::Role => "What this machine becomes",
            Screen::Disks => "Disks",
            Screen::Network => "Network",
            Screen::Site => "Site and credentials",
            Screen::Summary => "Summary",
            Screen::Confirm => "Confirm",
            Screen::Progress => "Installing",
            Screen::Done => "Done",
            Screen::Resume => "Resume the interrupted install",
        }
    }

    /// The one-line explanation under the title.
    pub fn explanation(self) -> &'static str {
        match self {
            Screen::Welcome => "This installs TAPPaaS on this machine. First choose your keyboard.",
            Screen::Hardware => "What the installer found in this machine. Nothing is changed yet.",
            Screen::Role => "Is this the first machine of a new site, or does it join one?",
            Screen::Disks => "Choose what each disk is for. Disks marked ERASE lose everything.",
            Screen::Network => "Plug the cable into the port you want as WAN: the screen follows.",
            Screen::Site => "Names for your site and the password of the administrator (root).",
            Screen::Summary => "Everything the install will do. Read it; nothing has happened yet.",
            Screen::Confirm => "Last step before the disks are erased.",
            Screen::Progress => "The install is running. Do not switch the machine off.",
            Screen::Done => "The install has ended.",
            Screen::Resume => {
                "An install on this machine did not finish. It can go on from where it stopped."
            }
        }
    }

    /// 1-based position, for "step 3 of 10".
    pub fn number(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }
}

/// Keyboard layouts offered on the welcome screen (XKB names the site file accepts).
pub const KEYBOARDS: [(&str, &str); 14] = [
    ("us", "English (US)"),
    ("gb", "English (UK)"),
    ("de", "German"),
    ("dk", "Danish"),
    ("fr", "French"),
    ("es", "Spanish"),
    ("it", "Italian"),
    ("nl", "Dutch"),
    ("no", "Norwegian"),
    ("se", "Swedish"),
    ("fi", "Finnish"),
    ("ch", "Swiss"),
    ("pt", "Portuguese"),
    ("pl", "Polish"),
];

/// What this machine becomes (the role screen's choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The first node of a new site: the primary.
    NewSite,
    /// A workload node joining a site (needs that site's file).
    Join,
    /// The backup node of a site (needs that site's file).
    Backup,
    /// Replaces a failed node of a site (needs that site's file).
    Replace,
}

impl Purpose {
    /// The role screen's choices, in order.
    pub const ALL: [Purpose; 4] = [
        Purpose::NewSite,
        Purpose::Join,
        Purpose::Backup,
        Purpose::Replace,
    ];

    /// The label on the role screen.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::NewSite => "The first machine of a new site",
            Purpose::Join => "Join an existing site (another workload machine)",
            Purpose::Backup => "The backup machine of an existing site",
            Purpose::Replace => "Replace a failed machine of an existing site",
        }
    }
}

/// A one-line text input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    /// The text.
    pub text: String,
    /// Shown as `*` (passwords).
    pub secret: bool,
}

impl Input {
    /// An input holding `text`.
    pub fn new(text: impl Into<String>) -> Input {
        Input {
            text: text.into(),
            secret: false,
        }
    }
    /// A password input.
    pub fn secret() -> Input {
        Input {
            text: String::new(),
            secret: true,
        }
    }
    /// What the screen shows.
    pub fn shown(&self) -> String {
        if self.secret {
            "*".repeat(self.text.chars().count())
        } else {
            self.text.clone()
        }
    }
}

/// The text fields of every screen, kept while the user moves back and forth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// Role screen: path of a site file to load.
    pub load_path: Input,
    /// Network: host name.
    pub hostname: Input,
    /// Network: management address.
    pub address: Input,
    /// Network: the firewall's fixed WAN address with prefix; empty for DHCP.
    pub wan_address: Input,
    /// Network: the upstream router, with a fixed WAN address.
    pub wan_gateway: Input,
    /// Site: short site name.
    pub site_name: Input,
    /// Site: public domain.
    pub domain: Input,
    /// Site: admin e-mail.
    pub email: Input,
    /// Site: time zone.
    pub timezone: Input,
    /// Site: root password.
    pub password: Input,
    /// Site: the password again.
    pub password2: Input,
    /// Site: a file holding an SSH public key.
    pub ssh_key_path: Input,
    /// Summary: where to save the site file.
    pub save_path: Input,
    /// Confirm: the typed host name.
    pub confirm: Input,
}

/// How one install step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    /// Not started.
    Pending,
    /// Running.
    Running,
    /// Ended (done, skipped or failed).
    Ended(Outcome),
}

/// One step on the progress screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepView {
    /// Step id.
    pub id: String,
    /// What it does.
    pub description: String,
    /// How it stands.
    pub state: StepState,
    /// (done, total) of the step's own count, when it reports one.
    pub count: Option<(u64, Option<u64>)>,
}

/// The progress screen's state, fed by the install's event stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The steps in plan order.
    pub steps: Vec<StepView>,
    /// Log lines (most recent last).
    pub log: Vec<String>,
    /// How the install ended, once it has.
    pub finished: Option<Outcome>,
}

/// A modal question or prompt over the current screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    /// Ctrl-C: "Quit the installer?"
    Quit,
    /// Summary: typing the path to save the site file to.
    Save,
}

/// Everything the TUI knows.
#[derive(Debug, Clone)]
pub struct State {
    /// The screen shown.
    pub screen: Screen,
    /// The probed machine.
    pub inv: Inventory,
    /// The hardware profile the machine matches (by DMI, or the one simulated).
    pub profile: Option<String>,
    /// The profile's hints for the planner.
    pub hints: Hints,
    /// Live link state per NIC name (starts from the probe, then the worker's polls).
    pub links: BTreeMap<String, LinkState>,
    /// Follow the cable: the next NIC whose link comes up becomes the WAN port.
    pub follow_wan: bool,
    /// The answers, as a site (every node of it, for a loaded site file).
    pub site: Site,
    /// Which of the site's nodes this machine is.
    pub node: usize,
    /// The role screen's choice.
    pub purpose: Purpose,
    /// Each disk's role as the user set it on the disks screen (by index into `inv.disks`);
    /// `None` until then: the roles come from the plan (the site's or the profile's choice).
    pub disk_roles: Option<Vec<Option<crate::plan::DiskRoleKind>>>,
    /// A site file was loaded (its path), so every screen starts from it.
    pub loaded_from: Option<String>,
    /// Whether the root password was set in this session or came from a loaded site file.
    pub password_set: bool,
    /// This machine was added to a loaded site as a new node in this session: the site gets a
    /// fresh join secret, and the primary must open its join window for it.
    pub added_node: bool,
    /// The join settings were made or renewed in this session (so going back and forth over
    /// the site screen does not renew them again).
    pub join_settings_made: bool,
    /// The text fields.
    pub fields: Fields,
    /// The focused row on the current screen (a list item or a field).
    pub focus: usize,
    /// Selected keyboard layout (index into [`KEYBOARDS`]).
    pub keyboard: usize,
    /// The plan of the current answers, or the planner's explanation why there is none.
    pub plan: Result<Plan, String>,
    /// Summary scroll offset (lines).
    pub scroll: u16,
    /// Problems that keep the user on this screen (shown in red with a "Problem:" prefix).
    pub errors: Vec<String>,
    /// A one-line notice (saved a file, loaded a key).
    pub notice: Option<String>,
    /// A question over the screen.
    pub modal: Option<Modal>,
    /// The install's progress.
    pub progress: Progress,
    /// Site files found on USB sticks at start (the first one pre-fills the load field).
    pub found_site_files: Vec<String>,
    /// SSH public keys (`.pub`) found on USB sticks at start.
    pub found_keys: Vec<String>,
    /// Draw with ASCII only (TERM=linux, serial consoles).
    pub ascii: bool,
    /// A simulation: nothing on this machine is touched.
    pub simulate: bool,
    /// The user asked to leave.
    pub quit: bool,
    /// An install of this live session that did not finish and can be resumed: its plan,
    /// site and completed steps (the resume screen offers it).
    pub resume: Option<crate::frontdoor::Interrupted>,
}
