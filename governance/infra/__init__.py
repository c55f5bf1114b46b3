"""Infrastructure as code: the product's Terraform stack generated from its access plan, and checks
(the project's own policies plus checkov, offline) of any Terraform folder."""
