//! Jupyter servers as ECS Fargate tasks (issue 15, part 2).
