//! The slots of a [`Layout`]: where each element of a file is (in the file, or in memory),
//! as the scan in the parent module finds them.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::data::{Column, DType, DataFrame, Element, Matrix, StringNa};
use crate::file::join;
use crate::format::read::MatrixKind;

/// A matrix element in the file, described from its metadata.
#[derive(Clone, Debug)]
pub struct MatrixMeta {
    /// The group holding it, e.g. `/layers`.
    pub parent: String,
    /// Its name in that group.
    pub name: String,
    /// `(rows, columns)`.
    pub shape: (usize, usize),
    /// The dtype of its values.
    pub dtype: DType,
    /// Dense, CSR or CSC.
    pub kind: MatrixKind,
}

impl MatrixMeta {
    /// The element's path, e.g. `/layers/counts`.
    pub fn path(&self) -> String {
        join(&self.parent, &self.name)
    }
}

/// Where a matrix element (`X`, a layer, an `obsp`/`varp` entry, `raw.X`) is.
#[derive(Clone, Debug)]
pub enum MatrixSlot {
    /// In the file, read block by block on demand.
    Disk(MatrixMeta),
    /// In memory (a pending change).
    Memory(Arc<Matrix>),
}

impl MatrixSlot {
    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            MatrixSlot::Disk(m) => m.shape,
            MatrixSlot::Memory(m) => m.shape(),
        }
    }

    /// The dtype of its values.
    pub fn dtype(&self) -> DType {
        match self {
            MatrixSlot::Disk(m) => m.dtype,
            MatrixSlot::Memory(m) => match &**m {
                Matrix::Dense(a) => a.dtype(),
                Matrix::Sparse(s) => s.data().dtype(),
            },
        }
    }

    /// Dense, CSR or CSC.
    pub fn kind(&self) -> MatrixKind {
        match self {
            MatrixSlot::Disk(m) => m.kind,
            MatrixSlot::Memory(m) => match &**m {
                Matrix::Dense(_) => MatrixKind::Dense,
                Matrix::Sparse(s) => MatrixKind::Sparse(s.format()),
            },
        }
    }
}

/// Where any other element (an `obsm`/`varm`/`uns` entry) is.
#[derive(Clone, Debug)]
pub enum ElemSlot {
    /// Member `name` of group `parent`, without its members `skip` (the neighbour graphs that
    /// move from `uns['neighbors']` to `obsp`).
    Disk {
        /// The group holding it, e.g. `/uns`.
        parent: String,
        /// Its name in that group.
        name: String,
        /// Members left out.
        skip: Vec<String>,
    },
    /// In memory (legacy annotations, pending changes).
    Memory(Arc<Element>),
}

/// Which names an axis of a matrix uses: the rows of `obs`, of `var` or of `raw.var`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameId {
    /// `obs`.
    Obs,
    /// `var`.
    Var,
    /// `raw.var`.
    RawVar,
}

/// A column of a frame read column by column.
#[derive(Clone, Debug)]
pub enum ColumnSlot {
    /// Member of the frame's group of the same name.
    Disk,
    /// In memory (a pending change).
    Memory(Arc<Column>),
}

/// An `obs`, `var` or `raw.var` frame.
#[derive(Clone, Debug)]
pub struct FrameLayout {
    /// Which frame it is.
    pub id: FrameId,
    /// Its number of rows.
    pub n_rows: usize,
    /// Where its index and columns are.
    pub source: FrameSource,
}

/// Where a frame's index and columns are.
#[derive(Clone, Debug)]
pub enum FrameSource {
    /// No frame in the file: anndata's default names `"0"`, `"1"`, …
    Default,
    /// Held in memory with a string index (legacy compound frames, legacy fixes).
    Memory(Arc<DataFrame>),
    /// A `dataframe` group, read one column at a time.
    Group {
        /// The group's path, e.g. `/obs`.
        path: String,
        /// The member holding the index (`_index` attribute).
        index_key: String,
        /// pandas' `df.index.name`.
        index_name: Option<String>,
        /// How the index is stored ([`DataFrame::index_string_na`]).
        index_na: Option<StringNa>,
        /// The columns in order.
        columns: IndexMap<String, ColumnSlot>,
    },
}

impl FrameLayout {
    /// The index's name (pandas `df.index.name`).
    pub fn index_name(&self) -> Option<String> {
        match &self.source {
            FrameSource::Default => None,
            FrameSource::Memory(df) => df.index_name().map(str::to_owned),
            FrameSource::Group { index_name, .. } => index_name.clone(),
        }
    }

    /// How the index is stored ([`DataFrame::index_string_na`]).
    pub fn index_string_na(&self) -> Option<StringNa> {
        match &self.source {
            FrameSource::Default => None,
            FrameSource::Memory(df) => df.index_string_na(),
            FrameSource::Group { index_na, .. } => *index_na,
        }
    }
}

/// The `raw` slot.
#[derive(Clone, Debug)]
pub struct RawLayout {
    /// `raw.X`.
    pub x: MatrixSlot,
    /// `raw.var`.
    pub var: FrameLayout,
    /// `raw.varm`.
    pub varm: IndexMap<String, ElemSlot>,
}

/// Every element of a file, as slots (see the [module docs](super)).
#[derive(Clone, Debug)]
pub struct Layout {
    /// Observations.
    pub n_obs: usize,
    /// Variables.
    pub n_vars: usize,
    /// `X`, if the file has one.
    pub x: Option<MatrixSlot>,
    /// `obs`.
    pub obs: FrameLayout,
    /// `var`.
    pub var: FrameLayout,
    /// `obsm` entries.
    pub obsm: IndexMap<String, ElemSlot>,
    /// `varm` entries.
    pub varm: IndexMap<String, ElemSlot>,
    /// `obsp` entries (with the graphs anndata moves there from `uns['neighbors']`).
    pub obsp: IndexMap<String, MatrixSlot>,
    /// `varp` entries.
    pub varp: IndexMap<String, MatrixSlot>,
    /// `layers`.
    pub layers: IndexMap<String, MatrixSlot>,
    /// `uns` entries.
    pub uns: IndexMap<String, ElemSlot>,
    /// `raw`, if kept.
    pub raw: Option<RawLayout>,
    /// Whether the file is in the current layout (root `encoding-type` `anndata`, no legacy
    /// annotations held in memory): only such files can be modified in place.
    pub current: bool,
}
