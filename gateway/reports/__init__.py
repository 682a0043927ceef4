"""Historical reports: half-hour buckets from final call records, the monthly three rates, staffing."""
