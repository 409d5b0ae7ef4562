//! `nyro-gw token inspect` and `token mint`.
