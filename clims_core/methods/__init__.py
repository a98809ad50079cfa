"""The methods' own settings and objectives (CLIMS, CCT), apart from the stages that train with them."""
