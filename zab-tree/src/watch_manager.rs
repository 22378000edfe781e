//! Watches per connection (being written).
