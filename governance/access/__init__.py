"""Who has what access: the effective access matrix from the generated bindings, and drift against
live IAM exported from GCP and Azure."""
