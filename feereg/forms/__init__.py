"""Forms, one module per area. Every form that changes state carries a CSRF token."""
