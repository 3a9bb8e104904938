"""One Prefect flow per backend command; each reads like the command."""
