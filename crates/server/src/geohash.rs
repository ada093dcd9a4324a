//! PLACEHOLDER: geohash encoding and distance math for the geo family.
