//! [`Axis`]: observations or variables, the two axes of an annotated matrix.

use crate::{Error, Result};

/// One of the two axes of an AnnData object: observations (cells, rows) or variables (genes,
/// columns).
///
/// ```
/// use annpage_engine::data::Axis;
/// assert_eq!(Axis::Obs.name(), "obs");
/// assert_eq!(Axis::Obs.other(), Axis::Var);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Axis {
    /// Observations (`obs`, the rows).
    #[default]
    Obs,
    /// Variables (`var`, the columns).
    Var,
}

impl Axis {
    /// `"obs"` or `"var"`, as anndata names the axis.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Obs => "obs",
            Axis::Var => "var",
        }
    }

    /// The other axis.
    pub fn other(self) -> Axis {
        match self {
            Axis::Obs => Axis::Var,
            Axis::Var => Axis::Obs,
        }
    }
}

/// Parses anndata's names of an axis, `"obs"` or `"var"`.
///
/// ```
/// use annpage_engine::data::Axis;
/// assert_eq!("var".parse::<Axis>()?, Axis::Var);
/// assert!("cells".parse::<Axis>().is_err());
/// # Ok::<(), annpage_engine::Error>(())
/// ```
impl std::str::FromStr for Axis {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "obs" => Ok(Axis::Obs),
            "var" => Ok(Axis::Var),
            other => Err(Error::invalid(format!(
                "axis must be 'obs' or 'var', not {other:?}"
            ))),
        }
    }
}
