"""The reviewer workspace: people, cases, grievances, post-sale monitoring and transparency reports."""
