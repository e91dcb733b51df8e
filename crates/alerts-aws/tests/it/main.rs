//! Over the wire on moto.
