pub mod fake_kds;
