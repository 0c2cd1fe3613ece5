//! Shared test code for the store test files.
#![allow(dead_code, unreachable_pub)]

pub mod store_behaviours;
