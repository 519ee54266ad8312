-- AlterTable
ALTER TABLE "Container" ADD COLUMN "idleSince" DATETIME;

