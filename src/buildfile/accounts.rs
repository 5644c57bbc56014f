//! `[image.NAME.accounts]`: the declared users and groups, located for the
//! errors [`crate::accounts::plan`] finds against the base.

use toml::Spanned;

use super::raw::RawAccounts;
use super::validate::Cx;
use super::values::parse_mode;
use crate::accounts::{Accounts, Group, User};
use crate::error::Result;

impl Cx<'_> {
    /// The accounts table: ids in range, names left for the planner (which
    /// checks them against the base too).
    pub(super) fn accounts(&self, path: &str, raw: Spanned<RawAccounts>) -> Result<Accounts> {
        let path = format!("{path}.accounts");
        let raw = raw.into_inner();
        let id = |v: &Spanned<i64>, at: &str| -> Result<u32> {
            u32::try_from(*v.get_ref())
                .ok()
                .filter(|id| *id < u32::MAX)
                .ok_or_else(|| {
                    self.err(
                        &self.loc(v.span(), at),
                        format!("id {} must be 0 to {}", v.get_ref(), u32::MAX - 1),
                    )
                })
        };
        let mut out = Accounts::default();
        for (i, g) in raw.groups.into_iter().enumerate() {
            let at = format!("{path}.groups[{i}]");
            let location = self.loc(g.span(), &at);
            let g = g.into_inner();
            out.groups.push(Group {
                gid: id(&g.gid, &format!("{at}.gid"))?,
                name: g.name,
                location,
            });
        }
        for (i, u) in raw.users.into_iter().enumerate() {
            let at = format!("{path}.users[{i}]");
            let location = self.loc(u.span(), &at);
            let u = u.into_inner();
            let home_mode = u
                .home_mode
                .as_ref()
                .map(|m| parse_mode(m, "home_mode"))
                .transpose()
                .map_err(|m| self.err(&location, m))?;
            out.users.push(User {
                uid: id(&u.uid, &format!("{at}.uid"))?,
                gid: id(&u.gid, &format!("{at}.gid"))?,
                home: u.home.unwrap_or_else(|| format!("/home/{}", u.name)),
                shell: u.shell.unwrap_or_default(),
                gecos: u.gecos.unwrap_or_default(),
                groups: u.groups,
                create_home: u.create_home.unwrap_or(true),
                home_mode,
                name: u.name,
                location,
            });
        }
        Ok(out)
    }
}
