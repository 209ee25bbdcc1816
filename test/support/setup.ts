// Timestamps must never be parsed in local time: run every test in an odd zone so such a bug shows.
process.env.TZ = 'Pacific/Chatham';
